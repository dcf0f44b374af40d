"""The microblog itself: a home page where logged-in users post short messages."""

from __future__ import annotations

from datetime import datetime, timezone

import sqlalchemy as sa
import sqlalchemy.orm as so
from flask import Blueprint, current_app, flash, redirect, render_template, url_for
from flask.typing import ResponseReturnValue
from flask_login import current_user, login_required

from .extensions import db
from .forms import PostForm
from .models import Post

bp = Blueprint("main", __name__)


def recent_posts() -> list[Post]:
    return list(
        db.session.scalars(
            sa.select(Post)
            .options(so.joinedload(Post.author))
            .order_by(Post.created_at.desc(), Post.id.desc())
            .limit(current_app.config["POSTS_PER_PAGE"])
        )
    )


@bp.route("/", methods=["GET"])
def index() -> ResponseReturnValue:
    form = PostForm() if current_user.is_authenticated else None
    return render_template("index.html", form=form, posts=recent_posts())


@bp.route("/post", methods=["POST"])
@login_required
def post() -> ResponseReturnValue:
    form = PostForm()
    if form.validate_on_submit():
        db.session.add(Post(body=form.post.data.strip(), user_id=current_user.id))
        db.session.commit()
        flash("Your post is live!", "success")
        return redirect(url_for("main.index"), 303)
    return render_template("index.html", form=form, posts=recent_posts()), 400


@bp.app_template_filter("when")
def when(value: datetime) -> str:
    """A short UTC time; SQLite hands datetimes back without a zone, and they are UTC."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=timezone.utc)
    return value.astimezone(timezone.utc).strftime("%d %b %Y, %H:%M UTC").lstrip("0")
