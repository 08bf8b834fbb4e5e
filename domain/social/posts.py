"""Posts: free text, an activity shared with a caption, or a message in a group's discussion.

Who reads a post: the author always. Anyone else needs no block between them and then, for a group post,
to be in the group's audience (anyone for an ``open`` group, active members for an ``approval`` group), or
for any other post the same rule as activities (``everyone``; ``followers`` and every post of a private
account need an accepted follow; ``only_me`` nobody). Everyone else gets 404, never 403. A shared activity
is embedded only when the viewer may see the activity itself: sharing never widens an activity's audience.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import exists, select

from domain import jobs
from domain import visibility as access
from domain.activities import service as activities
from domain.errors import refuse
from domain.feed import fanout as feed
from models import Activity, Group, GroupMember, Kudos, Post, User, db, social

#: Group posts keep this stored visibility; their audience comes from the group, not from the column.
GROUP_POST_VISIBILITY = "everyone"


def is_active_member(user_id: int, group_id: int) -> bool:
    return bool(db.session.scalar(select(exists().where(
        GroupMember.group_id == group_id, GroupMember.user_id == user_id, GroupMember.status == "active"))))


def in_group_audience(viewer_id: int, group_id: int) -> bool:
    """Anyone for an open group, active members for an approval group; never across a block with the group's
    owner (for them the group itself does not exist)."""
    group = db.session.get(Group, group_id)
    if group is None or social.is_blocked_either_way(viewer_id, group.owner_id):
        return False
    return group.join_policy == "open" or is_active_member(viewer_id, group_id)


def can_view_post(viewer: User, post: Post, author: User) -> bool:
    if viewer.id == author.id:
        return True
    if post.group_id is not None:  # a group post's audience is the group's, whatever its visibility field says
        return not social.is_blocked_either_way(viewer.id, author.id) and in_group_audience(viewer.id, post.group_id)
    return access.can_see(viewer.id, author.id, author.is_private, post.visibility)


def get_visible_post(viewer: User, post_id: int) -> tuple[Post, User]:
    post = db.session.get(Post, post_id)
    author = db.session.get(User, post.user_id) if post else None
    if post is None or author is None or not can_view_post(viewer, post, author):
        refuse(404, "Post not found.")
    return post, author


def _get_own_post(viewer: User, post_id: int) -> Post:
    post = db.session.get(Post, post_id)
    if post is None or post.user_id != viewer.id:
        refuse(404, "Post not found.")
    return post


def _shared_activity(viewer: User, activity_id: int | None) -> dict[str, Any] | None:
    if activity_id is None:
        return None
    activity = db.session.get(Activity, activity_id)
    owner = db.session.get(User, activity.user_id) if activity else None
    if activity is None or owner is None or not access.can_view(viewer, activity, owner):
        return None
    return activities.serialize(viewer, activity, owner)


def serialize_post(viewer: User, post: Post, author: User) -> dict[str, Any]:
    has_kudoed = db.session.scalar(select(exists().where(Kudos.post_id == post.id, Kudos.user_id == viewer.id)))
    shared = _shared_activity(viewer, post.activity_id)
    return {
        "id": post.id,
        "athlete": {"id": author.id, "display_name": author.display_name, "avatar_url": author.avatar_url},
        # Even the id of a shared activity the viewer may not see would tell them it exists.
        "text": post.text, "visibility": post.visibility, "activity_id": post.activity_id if shared else None,
        "activity": shared, "group_id": post.group_id,
        **access.seen_counts(viewer.id, "post", post), "has_kudoed": bool(has_kudoed),
        "created_at": post.created_at, "updated_at": post.updated_at,
    }


def _require_group_member(viewer: User, group_id: int) -> None:
    group = db.session.get(Group, group_id)
    # Across a block with its owner the group does not exist for the viewer: 404, as everywhere else.
    if group is None or (group.owner_id != viewer.id and social.is_blocked_either_way(viewer.id, group.owner_id)):
        refuse(404, "Group not found.")
    if not is_active_member(viewer.id, group_id):
        refuse(403, "Only active members can post in this group.")


def _reject_group_visibility() -> None:
    refuse(422, "A group post is read by the group's audience; it has no visibility of its own.",
          errors={"json": {"visibility": ["Not allowed on a group post."]}})


def create_post(viewer: User, data: dict[str, Any]) -> Post:
    if data.get("activity_id") is not None:
        access.get_visible(viewer, data["activity_id"])  # 404 unless the author may see what they share
    group_id = data.get("group_id")
    if group_id is not None:
        _require_group_member(viewer, group_id)
        if "visibility" in data:
            _reject_group_visibility()
        visibility = GROUP_POST_VISIBILITY
    else:
        visibility = data.get("visibility") or viewer.preferences.default_visibility
    post = Post(user_id=viewer.id, text=data["text"], visibility=visibility,
                activity_id=data.get("activity_id"), group_id=group_id)
    db.session.add(post)
    db.session.commit()
    feed.enqueue_item_changed("post", post.id)
    return post


def update_post(viewer: User, post_id: int, changes: dict[str, Any]) -> Post:
    post = _get_own_post(viewer, post_id)
    if post.group_id is not None and "visibility" in changes:
        _reject_group_visibility()
    for key, value in changes.items():
        setattr(post, key, value)
    db.session.commit()
    if changes:  # feeds may show the text and must follow a visibility change
        feed.enqueue_item_changed("post", post.id)
    return post


def delete_post(viewer: User, post_id: int) -> None:
    """Delete the post; its kudos, comments and notifications go with it (foreign-key cascades)."""
    post = _get_own_post(viewer, post_id)
    author_id = post.user_id
    db.session.delete(post)
    db.session.commit()
    jobs.send(jobs.MEDIA_PURGE)  # its media's objects (recorded by the database when the rows went)
    feed.enqueue_item_removed("post", post_id, author_id)
