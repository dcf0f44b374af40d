"""The microblog's own tables: users, their posts, and the demo mailbox."""

from __future__ import annotations

from datetime import datetime, timezone

import sqlalchemy as sa
import sqlalchemy.orm as so
from flask_login import UserMixin
from werkzeug.security import check_password_hash, generate_password_hash

from .extensions import db, login


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


class User(UserMixin, db.Model):  # type: ignore[name-defined,misc]
    id: so.Mapped[int] = so.mapped_column(primary_key=True)
    username: so.Mapped[str] = so.mapped_column(sa.String(64), index=True, unique=True)
    email: so.Mapped[str] = so.mapped_column(sa.String(120), index=True, unique=True)
    password_hash: so.Mapped[str | None] = so.mapped_column(sa.String(256))
    is_admin: so.Mapped[bool] = so.mapped_column(default=False)

    posts: so.WriteOnlyMapped[Post] = so.relationship(back_populates="author")

    def set_password(self, password: str) -> None:
        self.password_hash = generate_password_hash(password)

    def check_password(self, password: str) -> bool:
        return self.password_hash is not None and check_password_hash(self.password_hash, password)

    def __repr__(self) -> str:
        return f"<User {self.username}>"


class Post(db.Model):  # type: ignore[name-defined,misc]
    id: so.Mapped[int] = so.mapped_column(primary_key=True)
    body: so.Mapped[str] = so.mapped_column(sa.String(280))
    created_at: so.Mapped[datetime] = so.mapped_column(
        sa.DateTime(timezone=True), index=True, default=utcnow
    )
    user_id: so.Mapped[int] = so.mapped_column(sa.ForeignKey(User.id), index=True)

    author: so.Mapped[User] = so.relationship(back_populates="posts")

    def __repr__(self) -> str:
        return f"<Post {self.id} by {self.user_id}>"


class DemoMail(db.Model):  # type: ignore[name-defined,misc]
    """An e-mail the demo did not deliver, kept so /mailbox can show it."""

    __tablename__ = "demo_mail"

    id: so.Mapped[int] = so.mapped_column(primary_key=True)
    recipient: so.Mapped[str] = so.mapped_column(sa.String(254), index=True)
    subject: so.Mapped[str] = so.mapped_column(sa.String(300))
    text: so.Mapped[str] = so.mapped_column(sa.Text)
    html: so.Mapped[str] = so.mapped_column(sa.Text)
    sent_at: so.Mapped[datetime] = so.mapped_column(
        sa.DateTime(timezone=True), index=True, default=utcnow
    )


@login.user_loader
def load_user(user_id: str) -> User | None:
    return db.session.get(User, int(user_id))
