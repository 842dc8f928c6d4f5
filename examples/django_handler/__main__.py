"""``python -m examples.django_handler COMMAND``: this project's ``manage.py`` (``runserver``, ``check``)."""

import os
import sys

from django.core.management import execute_from_command_line

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "examples.django_handler.settings")
execute_from_command_line(["python -m examples.django_handler", *sys.argv[1:]])
