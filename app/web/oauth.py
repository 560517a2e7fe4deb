"""`GET /oauth/trustoo/callback`: where Trustoo sends the merchant back after approving ReviewBridge."""

from __future__ import annotations

from flask import Blueprint, abort, jsonify, request

from app.bootstrap import current_services
from app.core import trustoo

__all__ = ["bp"]

bp = Blueprint("oauth", __name__, url_prefix="/oauth")


@bp.get("/trustoo/callback")
def trustoo_callback():
    services = current_services()
    if not services.settings.trustoo_client_id:
        abort(404, description="Trustoo OAuth platform mode is off (TRUSTOO_CLIENT_ID is not set)")
    if request.args.get("error"):
        abort(400, description=f"the merchant did not approve ReviewBridge ({request.args['error']})")
    code, state = request.args.get("code"), request.args.get("state")
    if not code or not state:
        abort(400, description="code and state are required")
    try:
        shop = trustoo.complete_authorization(
            services.settings,
            services.engine,
            services.vault,
            services.trustoo_api,
            code=code,
            state=state,
            now=services.clock(),
        )
    except trustoo.OAuthStateError as exc:
        abort(400, description=str(exc))
    return jsonify(status="connected", source="trustoo", shop=shop)
