"""A Bitrix24 event handler as a FastAPI app (ASGI, async): ONAPPINSTALL at ``/b24/install``, every other
event at ``/b24/events``, the REST calls back made with ``httpx.AsyncClient`` after the answer has gone.

``app.app`` is the ASGI app. Serve it from the repository root with uvicorn::

    uvicorn examples.fastapi_handler.app:app --host 127.0.0.1 --port 8080

or hand it to the contract in process (see the README's contract section).
"""
