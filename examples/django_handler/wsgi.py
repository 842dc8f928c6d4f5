"""The project's WSGI application, for any WSGI server or for the contract in process."""

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "examples.django_handler.settings")
application = get_wsgi_application()
