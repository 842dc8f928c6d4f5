"""The reusable OnSessionStart contract: clauses any Bitrix24 event handler must honour."""

__all__: list[str] = []
