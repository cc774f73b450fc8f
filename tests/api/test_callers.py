"""Who a caller is: the physical panel bound to its uid in [[api.panels]], else `uid:<n>`."""

from __future__ import annotations

import pwd

import pytest
from pydantic import ValidationError

from lockerd.api.server import Caller, PanelMap, Role
from lockerd.config import Api as ApiConfig


def test_panels_bind_by_user_name_or_uid() -> None:
    nobody = pwd.getpwnam("nobody").pw_uid
    cfg = ApiConfig.model_validate({"panels": [{"user": "nobody", "panel": "front"},
                                               {"user": 60001, "panel": "back"},
                                               {"user": "no-such-user-here", "panel": "side"}]})
    panels = PanelMap(cfg)
    assert panels.panel_for(nobody) == "front"
    assert panels.panel_for(60001) == "back"
    assert panels.panel_for(60002) is None


def test_identity_is_the_bound_panel_else_the_uid() -> None:
    roles = frozenset({Role.PANEL})
    assert Caller(1, 60001, 60001, roles, "back").identity == "back"
    assert Caller(1, 60002, 60002, roles).identity == "uid:60002"


@pytest.mark.parametrize("panels", [
    [{"user": "kiosk", "panel": "front"}, {"user": "kiosk", "panel": "back"}],
    [{"user": "kiosk", "panel": "front:1"}],
    [{"user": -1, "panel": "front"}],
    [{"user": "kiosk"}],
])
def test_bad_panel_bindings_are_refused(panels: list[dict[str, object]]) -> None:
    with pytest.raises(ValidationError):
        ApiConfig.model_validate({"panels": panels})
