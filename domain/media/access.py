"""Who may see a media item: exactly those who may see its parent, by the parent's own rule (no second copy).

activity → the activity's visibility (domain.visibility); post → the post's (domain.social.posts, group posts
included); chat message → members of the conversation with no block with the sender; avatar → anyone not in a
block with the owner; nothing attached yet → the owner only. Everyone else is told "not found".
A photo's capture location is shown to others only when the parent is an activity they may see and the place lies
outside the owner's privacy zones and hidden start/end (the same randomized discs as the track's hidden points).
"""

from __future__ import annotations

import numpy as np
from sqlalchemy import select

from domain.algorithms.geo import haversine_m
from domain.algorithms.privacy import live_point_hidden, start_end_lengths
from domain.algorithms.streams import decode_track
from domain.errors import refuse
from domain.privacy.settings import activity_privacy_seed, privacy_settings
from domain.social.posts import can_view_post
from domain.visibility import can_view
from models import Activity, ActivityStream, Post, User, db, social
from models.chat import ConversationMember, Message
from models.media import READY, MediaItem


def can_see(viewer: User, item: MediaItem) -> bool:
    if viewer.id == item.user_id:
        return True
    if item.state != READY:  # an item still on its way is its owner's business
        return False
    owner = db.session.get(User, item.user_id)
    if owner is None:
        return False
    if item.activity_id is not None:
        activity = db.session.get(Activity, item.activity_id)
        return activity is not None and can_view(viewer, activity, owner)
    if item.post_id is not None:
        post = db.session.get(Post, item.post_id)
        return post is not None and can_view_post(viewer, post, owner)
    if item.message_id is not None:
        message = db.session.get(Message, item.message_id)
        if message is None or social.is_blocked_either_way(viewer.id, owner.id):
            return False
        return db.session.scalar(select(ConversationMember.user_id).where(
            ConversationMember.conversation_id == message.conversation_id,
            ConversationMember.user_id == viewer.id)) is not None
    if item.attach_type == "avatar":
        return not social.is_blocked_either_way(viewer.id, owner.id)
    return False


def get_visible(viewer: User, media_id: int) -> MediaItem:
    item = db.session.get(MediaItem, media_id)
    if item is None or not can_see(viewer, item):
        refuse(404, "Media not found.")
    return item


def get_own(viewer: User, media_id: int) -> MediaItem:
    item = db.session.get(MediaItem, media_id)
    if item is None or item.user_id != viewer.id:
        refuse(404, "Media not found.")
    return item


def shown_location(viewer: User, item: MediaItem) -> dict[str, float] | None:
    """The capture location as this viewer may see it (None: not shown)."""
    if item.capture_lat is None or item.capture_lng is None:
        return None
    here = {"lat": item.capture_lat, "lng": item.capture_lng}
    if viewer.id == item.user_id:
        return here
    if item.activity_id is None:
        return None
    activity = db.session.get(Activity, item.activity_id)
    owner = db.session.get(User, item.user_id)
    if activity is None or owner is None or not can_view(viewer, activity, owner):
        return None
    return here if not location_hidden(activity, owner, item.capture_lat, item.capture_lng) else None


def location_hidden(activity: Activity, owner: User, lat: float, lng: float) -> bool:
    """The track's hidden-points rule for one place: inside a zone's randomized disc (the activity's seed), or
    within the randomized hidden start/end stretch of the track's first or last point."""
    zones, hide_m = privacy_settings(owner)
    seed = activity_privacy_seed(activity)
    if live_point_hidden(lat, lng, zones, seed=seed):
        return True
    if hide_m <= 0:
        return False
    stream = db.session.get(ActivityStream, activity.id)
    if stream is None:
        return False
    track = decode_track(stream.data)
    positioned = np.flatnonzero(np.isfinite(track.lat) & np.isfinite(track.lon))
    if positioned.size == 0:
        return False
    start_m, end_m = start_end_lengths(hide_m, seed)
    # Within the stretch's length of the real start or end, measured straight: never more than along the track,
    # so a place the track's rule hides is hidden here too.
    for i, radius in ((positioned[0], start_m), (positioned[-1], end_m)):
        if float(haversine_m(lat, lng, float(track.lat[i]), float(track.lon[i]))) <= radius:
            return True
    return False
