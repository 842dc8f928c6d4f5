"""The two URLs Bitrix24 posts to: the install handler and the event handler the app binds."""

from django.urls import path

from examples.django_handler.bitrix import views

urlpatterns = [
    path("b24/install", views.install, name="b24-install"),
    path("b24/events", views.events, name="b24-events"),
]
