"""EVENTPIPE_CVAT_URL is checked when the gateway builds its CVAT identity provider."""

from __future__ import annotations

import pytest

from eventpipe.settings import CvatSettings, SettingsError
from ingest_gateway.identity.cvat_provider import CvatIdentityProvider


@pytest.mark.parametrize("url", ["cvat.example.com", "ftp://cvat.example.com", "//cvat.test"])
def test_a_cvat_url_that_is_not_http_names_the_variable(url: str) -> None:
    with pytest.raises(SettingsError) as raised:
        CvatIdentityProvider.from_settings(CvatSettings(cvat_url=url))
    assert str(raised.value).startswith(f"EVENTPIPE_CVAT_URL={url!r} ")
    assert "http:// or https://" in str(raised.value)


def test_no_cvat_url_is_no_provider() -> None:
    assert CvatIdentityProvider.from_settings(CvatSettings(cvat_url="  ")) is None


async def test_an_http_or_https_url_gives_a_provider() -> None:
    for url in ("http://cvat:8080", " https://cvat.example.com/ "):
        provider = CvatIdentityProvider.from_settings(CvatSettings(cvat_url=url))
        assert provider is not None
        await provider.close()
