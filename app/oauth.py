"""`GET /oauth/trustoo/callback`: where Trustoo sends the merchant back after approving ReviewBridge."""

from __future__ import annotations

from flask import Blueprint, abort, jsonify, request

from app import trustoo
from app.runtime import runtime

__all__ = ["bp"]

bp = Blueprint("oauth", __name__, url_prefix="/oauth")


@bp.get("/trustoo/callback")
def trustoo_callback():
    rt = runtime()
    if not rt.settings.trustoo_client_id:
        abort(404, description="Trustoo OAuth platform mode is off (TRUSTOO_CLIENT_ID is not set)")
    if request.args.get("error"):
        abort(400, description=f"the merchant did not approve ReviewBridge ({request.args['error']})")
    code, state = request.args.get("code"), request.args.get("state")
    if not code or not state:
        abort(400, description="code and state are required")
    try:
        shop = trustoo.complete_authorization(
            rt.settings, rt.engine, rt.vault, rt.trustoo_api, code=code, state=state, now=rt.clock()
        )
    except trustoo.OAuthStateError as exc:
        abort(400, description=str(exc))
    return jsonify(status="connected", source="trustoo", shop=shop)
