"""The console's files as the package ships them: every module the page imports exists, nothing
is fetched from another origin, and the names it shares with the server (the events filters,
the vendor renderings) are the server's own."""

from __future__ import annotations

import re

from eventstrata.console import ASSETS, CSP, load_assets
from eventstrata.model import FORMATS
from eventstrata.query import params

ASSET_FILES = load_assets()


def _text(name: str) -> str:
    return ASSET_FILES[name].body.decode()


def test_every_imported_module_and_linked_file_is_shipped() -> None:
    names = set(ASSET_FILES)
    assert {"index.html", "app.js", "api.js", "style.css"} <= names
    for name in names:
        if name.endswith(".js"):
            for dep in re.findall(r"""from '\./([a-z]+\.js)'""", _text(name)):
                assert dep in names, f"{name} imports {dep}"
    linked = re.findall(r'(?:src|href)="([^"#]+)"', _text("index.html"))
    for url in linked:
        if url.startswith("data:"):
            continue
        assert url.startswith(ASSETS + "/") and url.removeprefix(ASSETS + "/") in names, url


def test_nothing_comes_from_another_origin() -> None:
    for name, asset in ASSET_FILES.items():
        text = asset.body.decode().replace("'http://www.w3.org/2000/svg'", "")  # a namespace name
        assert not re.search(r"(https?:)?//[a-z0-9.-]+\.[a-z]{2,}/", text), name
        assert "@import" not in text and "url(" not in text, name
    assert "default-src 'none'" in CSP and "script-src 'self'" in CSP and "unsafe" not in CSP


def test_the_filter_bar_has_exactly_the_apis_filters() -> None:
    names = re.findall(r"\{ name: '([a-z_]+)'", _text("filters.js"))
    api = set(params._REPEATABLE) | set(params._SINGLE) | {"is_conversion"}
    assert len(names) == len(set(names))
    assert set(names) == api


def test_the_event_detail_offers_every_vendor_rendering() -> None:
    tabs = re.findall(r"\['([a-z]+)', '[^']+'\]", _text("detail.js").split("RENDERINGS = [", 1)[1].split("];", 1)[0])
    assert tabs[0] == "api"
    assert set(tabs[1:]) == set(FORMATS) - {"native"}


def test_etags_differ_per_file_content() -> None:
    etags = [a.etag for a in ASSET_FILES.values()]
    assert len(set(etags)) == len(etags)
    assert all(a.media_type.endswith("charset=utf-8") for a in ASSET_FILES.values())
