"""The smallest shims that make fastapi-admin 1.0.4 run on Python 3.11, Starlette 1.x and redis 8.

Imported first by every studio module that imports fastapi_admin. Each shim names the
upstream issue it works around; tests/test_studio_compat.py covers each one.
"""

from __future__ import annotations

import sys
from io import BytesIO
from pathlib import Path
from typing import Any

import redis.asyncio

# aioredis 2.0.1 does not import on Python >= 3.11 ("duplicate base class TimeoutError"), and
# fastapi_admin imports it at module level only for `Redis` type hints; redis.asyncio is the same
# API (aioredis was merged into redis-py 4.2). Upstream: fastapi-admin#138, #181.
sys.modules.setdefault("aioredis", redis.asyncio)

from babel.messages.mofile import write_mo  # noqa: E402
from babel.messages.pofile import read_po  # noqa: E402
from babel.support import Translations  # noqa: E402
from fastapi_admin import i18n  # noqa: E402
from fastapi_admin.constants import BASE_DIR  # noqa: E402
from fastapi_admin.template import templates  # noqa: E402
from fastapi_admin.widgets import Widget  # noqa: E402
from fastapi_admin.widgets.inputs import Input  # noqa: E402
from markupsafe import Markup, escape  # noqa: E402
from starlette.requests import Request  # noqa: E402


def _template_response_accepting_the_old_signature() -> None:
    """Starlette 1.0 removed `TemplateResponse(name, context)`; fastapi_admin still calls it.

    Upstream: no fastapi-admin issue (the project is unmaintained since 2024); the same break
    as fastapi/fastapi#15197. Calls in the new form pass through unchanged.
    """
    new_style = templates.TemplateResponse
    if getattr(new_style, "accepts_old_signature", False):
        return

    def template_response(*args: Any, **kwargs: Any) -> Any:
        if args and isinstance(args[0], str):  # old form: (name, context, status_code, ...)
            name, *rest = args
            context = rest.pop(0) if rest else kwargs.pop("context")
            return new_style(context["request"], name, context, *rest, **kwargs)
        return new_style(*args, **kwargs)

    template_response.accepts_old_signature = True  # type: ignore[attr-defined]
    templates.TemplateResponse = template_response


def _compiled_translations() -> None:
    """The wheel ships only .po files, so every label rendered as a raw message id.

    Compile each catalogue in memory with Babel (nothing is written into site-packages) and
    make English the locale. Upstream: fastapi-admin#151, #119.
    """
    for locale in list(i18n.TRANSLATIONS):
        po = Path(BASE_DIR, "locales", locale, "LC_MESSAGES", "messages.po")
        with po.open("rb") as source:
            catalog = read_po(source, locale=locale)
        compiled = BytesIO()
        write_mo(compiled, catalog)
        compiled.seek(0)
        i18n.TRANSLATIONS[locale] = Translations(compiled)
    i18n.set_locale("en_US")


def _escaped_widget_output() -> None:
    """list.html renders every cell with `|safe`, and a widget without a template returns the
    raw database value: stored XSS from any message content. Template output (autoescaped by
    Jinja) is marked safe; a raw value is escaped. Upstream: fastapi-admin#182.
    """
    render = Widget.render
    if getattr(render, "escapes", False):
        return

    async def escaped_render(self: Widget, request: Request, value: Any) -> Markup:
        rendered = await render(self, request, value)
        return Markup(rendered) if self.template else escape(rendered)

    escaped_render.escapes = True  # type: ignore[attr-defined]
    Widget.render = escaped_render


def _empty_nullable_input_is_null() -> None:
    """An empty nullable field arrives as "" and crashes the save (int(''), pendulum's
    ParseError) instead of storing NULL. Upstream: no issue filed; fastapi_admin/widgets/inputs.py
    passes the raw string through.
    """
    parse_value = Input.parse_value
    if getattr(parse_value, "empty_is_null", False):
        return

    async def parse_empty_as_null(self: Input, request: Request, value: Any) -> Any:
        if value == "" and self.context.get("null"):
            return None
        return await parse_value(self, request, value)

    parse_empty_as_null.empty_is_null = True  # type: ignore[attr-defined]
    Input.parse_value = parse_empty_as_null


_template_response_accepting_the_old_signature()
_compiled_translations()
_escaped_widget_output()
_empty_nullable_input_is_null()
