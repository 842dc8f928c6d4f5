"""Event generation: ``EventStream.bodies`` against the naive builder (one Faker call per field), one core."""

from __future__ import annotations

from collections.abc import Iterator

from bench.core import Row, Stat, interleave, one_core, per_round, rate, register


def _naive_events(seed: int) -> Iterator[str]:
    """The naive builder: one Faker call per field, a dict per event, then the PHP encoder."""
    from faker import Faker

    from mock_portal.fakes import B24Provider
    from mock_portal.wire import encode

    fake = Faker("ru_RU")
    fake.add_provider(B24Provider)
    fake.seed_instance(seed)
    ts = 1_734_800_000
    while True:
        ts += fake.random_int(0, 3)
        domain = fake.b24_domain()
        chat_id = fake.b24_chat_id()
        user_id = fake.b24_user_id()
        payload = {
            "event": "ONSESSIONSTART",
            "event_handler_id": fake.random_int(1, 9999),
            "data": {
                "DATA": [
                    {
                        "connector": {
                            "connector_id": fake.b24_connector_id(),
                            "line_id": fake.b24_line_id(),
                            "chat_id": chat_id,
                            "user_id": user_id,
                        },
                        "session": {
                            "id": fake.b24_session_id(),
                            "closed": "N",
                            "parent_id": 0,
                            "close_term": fake.b24_close_term(),
                        },
                        "chat": {"id": chat_id},
                        "user": {"id": user_id},
                    }
                ]
            },
            "ts": ts,
            "auth": {
                "access_token": fake.b24_access_token(),
                "expires": ts + 3600,
                "expires_in": 3600,
                "scope": fake.b24_scope(),
                "domain": domain,
                "server_endpoint": fake.b24_server_endpoint(),
                "status": fake.b24_status(),
                "client_endpoint": fake.b24_client_endpoint(domain),
                "member_id": fake.b24_member_id(),
                "user_id": fake.random_int(1, 20000),
                "application_token": fake.b24_application_token(),
            },
        }
        yield encode(payload)


@register("generate", help="EventStream.bodies against one Faker call per field")
def run(quick: bool) -> list[Row]:
    import hashlib

    from mock_portal.events import EventStream
    from mock_portal.fastpath import EventValidator

    def fast_run() -> int:
        n = 5_000
        for _ in EventStream(seed=7).bodies(n):
            pass
        return n

    naive = _naive_events(7)

    def naive_run() -> int:
        for _ in range(200):
            next(naive)
        return 200

    window = 0.2 if quick else 0.5
    with one_core() as pinning:
        figures = interleave(
            {"fast": lambda: rate(fast_run, window), "naive": lambda: rate(naive_run, window)},
            rounds=3 if quick else 5,
        )

    def digest(seed: int) -> str:
        h = hashlib.sha256()
        for body in EventStream(seed=seed).bodies(2_000 if quick else 10_000):
            h.update(body.encode())
        return h.hexdigest()

    same_bytes = digest(7) == digest(7) != digest(8)
    validator = EventValidator()
    all_valid = all(validator.is_valid_body(b) for b in EventStream(seed=7).bodies(2000))
    ratio = per_round(figures["fast"], figures["naive"])
    value = Stat.of(figures["fast"])
    return [
        Row(
            "generate",
            "OnSessionStart generation + PHP form encoding (EventStream.bodies)",
            value,
            "events/s",
            baselines={"naive: one Faker call per field + wire.encode": Stat.of(figures["naive"])},
            ratios={"fast / naive (x)": ratio},
            target=">= 10x naive, same seed same bytes, every body valid",
            met=ratio.median >= 10 and same_bytes and all_valid,
            notes=f"{pinning}; same seed -> same bytes: {same_bytes}; 2000 checked valid: {all_valid}",
        )
    ]
