"""A Bitrix24 event handler as a minimal Django project: one settings file, one app (``bitrix``) with an
install view and an events view.

``wsgi.application`` is the WSGI app. It answers ONAPPINSTALL at ``/b24/install`` and every other event at
``/b24/events``. Run it from the repository root with Django's own server::

    python -m examples.django_handler runserver 127.0.0.1:8080 --noreload

or hand ``wsgi.application`` to the contract in process (see the README's contract section). The settings
take ``DJANGO_ALLOWED_HOSTS`` (comma-separated, default ``localhost,127.0.0.1``) and ``DJANGO_SECRET_KEY``.
"""
