"""WSGI entry point for gunicorn: ``rems_service.wsgi:app``."""

from rems_service import create_app

app = create_app()
