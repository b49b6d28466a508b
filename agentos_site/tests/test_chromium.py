"""The browser tests' chromium: present, it is launched; missing, the tests fail (not skip) naming the fix."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import sync_playwright

from testing import browser


def test_without_chromium_a_browser_test_fails_with_the_command_to_run(tmp_path, monkeypatch, request):
    monkeypatch.setattr(browser, "CHROMIUM", tmp_path / "chromium")
    with pytest.raises(pytest.fail.Exception) as failure:
        request.getfixturevalue("chromium")
    message = str(failure.value)
    assert message == (
        f"the browser tests need Debian's chromium at {tmp_path / 'chromium'}: "
        "run `sudo apt-get install -y chromium` (make test does it when run as root)"
    )


def test_a_file_that_cannot_be_run_is_not_a_chromium(tmp_path):
    stray = tmp_path / "chromium"
    stray.write_text("not a browser")
    assert re.search(r"run `sudo apt-get install -y chromium`", browser.chromium_missing(stray) or "")


@pytest.mark.browser
def test_the_installed_chromium_is_what_the_browser_tests_launch(chromium):
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(**chromium)
        try:
            assert launched.version.split(".")[0].isdigit()
        finally:
            launched.close()
