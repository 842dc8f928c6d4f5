"""All of the project's settings. No database: installations are kept in memory (see ``bitrix/portal.py``)."""

import os
import secrets

SECRET_KEY = os.environ.get("DJANGO_SECRET_KEY") or secrets.token_urlsafe(50)
DEBUG = False
ALLOWED_HOSTS = [h.strip() for h in os.environ.get("DJANGO_ALLOWED_HOSTS", "localhost,127.0.0.1").split(",")]

INSTALLED_APPS = ["examples.django_handler.bitrix"]
MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.middleware.common.CommonMiddleware",
    # the portal posts without a CSRF token: the two views are exempt, everything else keeps the check
    "django.middleware.csrf.CsrfViewMiddleware",
]
ROOT_URLCONF = "examples.django_handler.urls"
WSGI_APPLICATION = "examples.django_handler.wsgi.application"
DATABASES: dict[str, dict[str, str]] = {}
USE_TZ = True

# an event is a few kilobytes of form fields; a larger body is refused with 400 before it is read
DATA_UPLOAD_MAX_MEMORY_SIZE = 1 << 20
DATA_UPLOAD_MAX_NUMBER_FIELDS = 1000
