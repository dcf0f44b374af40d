"""The microblog's Flask-WTF forms (CSRF on through FlaskForm)."""

from __future__ import annotations

import sqlalchemy as sa
from flask_wtf import FlaskForm
from wtforms import BooleanField, PasswordField, StringField, SubmitField, TextAreaField
from wtforms.validators import DataRequired, EqualTo, Length, Regexp, ValidationError

from .extensions import db
from .models import User

# A light check that keeps the demo free of the email-validator dependency.
EMAIL_SHAPE = r"^[^@\s]+@[^@\s]+\.[^@\s]+$"


def strip(value: str | None) -> str | None:
    return value.strip() if isinstance(value, str) else value


class LoginForm(FlaskForm):
    username = StringField(
        "Username",
        filters=[strip],
        validators=[DataRequired("Enter your username.")],
        render_kw={"autocomplete": "username"},
    )
    password = PasswordField(
        "Password",
        validators=[DataRequired("Enter your password.")],
        render_kw={"autocomplete": "current-password"},
    )
    remember_me = BooleanField("Remember me")
    submit = SubmitField("Log in")


class RegistrationForm(FlaskForm):
    username = StringField(
        "Username",
        filters=[strip],
        validators=[
            DataRequired("Choose a username."),
            Length(max=64, message="A username may be at most %(max)d characters."),
            Regexp(
                r"^[A-Za-z0-9_.-]+$",
                message="Use only letters, digits, dots, dashes and underscores.",
            ),
        ],
        render_kw={"autocomplete": "username"},
    )
    email = StringField(
        "E-mail",
        filters=[strip],
        validators=[
            DataRequired("Enter your e-mail address."),
            Length(max=120, message="An e-mail address may be at most %(max)d characters."),
            Regexp(EMAIL_SHAPE, message="Enter an e-mail address like name@example.com."),
        ],
        render_kw={"autocomplete": "email", "type": "email"},
    )
    password = PasswordField(
        "Password",
        validators=[
            DataRequired("Choose a password."),
            Length(min=4, message="Use at least %(min)d characters."),
        ],
        render_kw={"autocomplete": "new-password"},
    )
    password2 = PasswordField(
        "Repeat password",
        validators=[
            DataRequired("Type the password again."),
            EqualTo("password", message="The two passwords differ."),
        ],
        render_kw={"autocomplete": "new-password"},
    )
    submit = SubmitField("Register")

    def validate_username(self, username: StringField) -> None:
        name = (username.data or "").lower()
        taken = db.session.scalar(sa.select(User.id).where(sa.func.lower(User.username) == name))
        if taken is not None:
            raise ValidationError("That username is taken; choose another.")

    def validate_email(self, email: StringField) -> None:
        address = (email.data or "").lower()
        taken = db.session.scalar(sa.select(User.id).where(sa.func.lower(User.email) == address))
        if taken is not None:
            raise ValidationError("An account with that e-mail address exists already.")


class LogoutForm(FlaskForm):
    """Only the CSRF token: logging out is a POST like every other state change."""


class PostForm(FlaskForm):
    post = TextAreaField(
        "Say something",
        validators=[
            DataRequired("Write something before posting."),
            Length(max=280, message="A post may be at most %(max)d characters."),
        ],
        render_kw={"rows": 3, "maxlength": 280},
    )
    submit = SubmitField("Post")
