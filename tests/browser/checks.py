"""What the browser tests look for on a page: axe-core, overflow, headings, landmarks."""

from __future__ import annotations

import itertools
from typing import Any

import pytest

from tests.browser.live import AXE_SCRIPT

#: axe-core's two worst impact levels; any of these fails a test.
BLOCKING_IMPACTS = {"serious", "critical"}


def axe_violations(page: Any) -> list[dict[str, Any]]:
    """axe-core's violations on the page as it is now (WCAG 2.x A/AA and best practices)."""
    if not AXE_SCRIPT.exists():
        pytest.skip(f"{AXE_SCRIPT.relative_to(AXE_SCRIPT.parents[2])} is missing: run `npm ci`")
    if not page.evaluate("() => typeof window.axe === 'object'"):
        page.add_script_tag(path=str(AXE_SCRIPT))
    result: dict[str, Any] = page.evaluate(
        """() => axe.run(document, {
            runOnly: {type: 'tag', values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa',
                                            'wcag22aa', 'best-practice']},
            resultTypes: ['violations'],
        })"""
    )
    return list(result["violations"])


def describe_violations(violations: list[dict[str, Any]]) -> str:
    lines = []
    for violation in violations:
        lines.append(f"[{violation['impact']}] {violation['id']}: {violation['help']}")
        lines.append(f"    {violation['helpUrl']}")
        for node in violation["nodes"][:5]:
            lines.append(f"    at {' '.join(node['target'])}: {node['html'][:160]}")
            summary = (node.get("failureSummary") or "").replace("\n", " ")
            if summary:
                lines.append(f"       {summary[:300]}")
    return "\n".join(lines)


def assert_no_serious_axe_violations(page: Any) -> list[dict[str, Any]]:
    """Fails on serious or critical violations; returns the milder ones for the caller."""
    violations = axe_violations(page)
    blocking = [v for v in violations if v["impact"] in BLOCKING_IMPACTS]
    assert not blocking, f"axe-core on {page.url}:\n{describe_violations(blocking)}"
    return [v for v in violations if v["impact"] not in BLOCKING_IMPACTS]


def horizontal_overflow(page: Any) -> str | None:
    """None if nothing sticks out sideways; else the page width and the widest culprits."""
    found: str | None = page.evaluate(
        """() => {
            const root = document.documentElement;
            if (root.scrollWidth <= root.clientWidth) return null;
            const wide = [...document.body.querySelectorAll('*')]
                .filter(el => el.getBoundingClientRect().right > root.clientWidth + 0.5)
                .slice(0, 5)
                .map(el => el.outerHTML.slice(0, 120));
            return `scrollWidth ${root.scrollWidth} > clientWidth ${root.clientWidth}: `
                + wide.join(' | ');
        }"""
    )
    return found


def heading_levels(page: Any) -> list[int]:
    """The levels of the visible-to-assistive-technology headings, in document order."""
    levels: list[int] = page.evaluate(
        """() => [...document.querySelectorAll('h1, h2, h3, h4, h5, h6')]
            .filter(h => !h.closest('[hidden], [aria-hidden="true"]'))
            .map(h => Number(h.tagName[1]))"""
    )
    return levels


def assert_sensible_headings(page: Any) -> None:
    levels = heading_levels(page)
    assert levels.count(1) == 1, f"{page.url}: {levels.count(1)} h1 elements ({levels})"
    assert levels[0] == 1, f"{page.url}: the first heading is an h{levels[0]}"
    for before, after in itertools.pairwise(levels):
        assert after <= before + 1, f"{page.url}: h{before} is followed by h{after} ({levels})"


def assert_landmarks(page: Any) -> None:
    assert page.locator("main").count() == 1, f"{page.url}: not exactly one <main>"
    assert page.get_by_role("navigation").count() >= 1, f"{page.url}: no <nav>"


def unlabelled_controls(page: Any) -> list[str]:
    """Visible form controls without an accessible name."""
    found: list[str] = page.evaluate(
        """() => [...document.querySelectorAll('input, select, textarea')]
            .filter(el => !['hidden', 'submit', 'button', 'reset', 'image'].includes(el.type))
            .filter(el => !(el.labels && el.labels.length) && !el.getAttribute('aria-label')
                          && !el.getAttribute('aria-labelledby'))
            .map(el => el.outerHTML.slice(0, 120))"""
    )
    return found


def broken_text(page: Any, selector: str) -> list[str]:
    """Elements matching ``selector`` with a run of text that wraps or breaks mid-word.

    Each text node must sit on one line, and the element must not cut its content off;
    separate text nodes may stack (a tab's count under its name on a phone).
    """
    found: list[str] = page.evaluate(
        """(selector) => [...document.querySelectorAll(selector)]
            .filter(el => el.getClientRects().length)
            .flatMap(el => {
                const problems = [];
                const walker = document.createTreeWalker(el, NodeFilter.SHOW_TEXT);
                for (let node = walker.nextNode(); node; node = walker.nextNode()) {
                    if (!node.textContent.trim()) continue;
                    const range = document.createRange();
                    range.selectNodeContents(node);
                    const style = getComputedStyle(node.parentElement);
                    const line = parseFloat(style.lineHeight) || 1.2 * parseFloat(style.fontSize);
                    const tops = [...range.getClientRects()].filter(r => r.width > 0)
                        .map(r => r.top).sort((a, b) => a - b);
                    const lines = tops.filter((top, i) => i === 0 || top - tops[i - 1] > line / 2);
                    if (lines.length > 1) {
                        problems.push(`"${node.textContent.trim()}" on ${lines.length} lines`);
                    }
                }
                if (el.clientWidth > 0 && el.scrollWidth > el.clientWidth) {
                    problems.push(`cut off (${el.scrollWidth} > ${el.clientWidth}px)`);
                }
                return problems.map(problem => `${el.outerHTML.slice(0, 100)}: ${problem}`);
            })""",
        selector,
    )
    return found


#: Room a native (appearance: auto) select keeps for its arrow inside the content box.
NATIVE_SELECT_ARROW_PX = 20


def clipped_selects(page: Any, selector: str = "select") -> list[str]:
    """Selects too narrow to show their longest option whole."""
    found: list[str] = page.evaluate(
        """([selector, arrow]) => {
            const probe = document.createElement('span');
            document.body.append(probe);
            const clipped = [...document.querySelectorAll(selector)].flatMap(select => {
                const style = getComputedStyle(select);
                probe.style.cssText = 'position: absolute; visibility: hidden; white-space: pre;'
                    + `font: ${style.font}; letter-spacing: ${style.letterSpacing};`
                    + `text-transform: ${style.textTransform};`;
                const widths = [...select.options].map(option => {
                    probe.textContent = option.text;
                    return [probe.getBoundingClientRect().width, option.text];
                }).sort((a, b) => b[0] - a[0]);
                const room = select.clientWidth - parseFloat(style.paddingLeft)
                    - parseFloat(style.paddingRight) - (style.appearance === 'none' ? 0 : arrow);
                const [widest, text] = widths[0] || [0, ''];
                return widest > room + 0.5
                    ? [`#${select.id}: "${text}" needs ${widest.toFixed(1)}px,`
                       + ` has ${room.toFixed(1)}px`]
                    : [];
            });
            probe.remove();
            return clipped;
        }""",
        [selector, NATIVE_SELECT_ARROW_PX],
    )
    return found


def sticking_out(page: Any, selector: str, container: str) -> list[str]:
    """Elements matching ``selector`` that reach outside the content box of their ``container``
    (the closest ancestor matching it)."""
    found: list[str] = page.evaluate(
        """([selector, container]) => [...document.querySelectorAll(selector)]
            .filter(el => el.getClientRects().length)
            .flatMap(el => {
                const box = el.parentElement.closest(container);
                const outer = box.getBoundingClientRect();
                const style = getComputedStyle(box);
                const left = outer.left + parseFloat(style.borderLeftWidth)
                    + parseFloat(style.paddingLeft);
                const right = outer.right - parseFloat(style.borderRightWidth)
                    - parseFloat(style.paddingRight);
                const rect = el.getBoundingClientRect();
                return rect.left < left - 0.5 || rect.right > right + 0.5
                    ? [`${el.outerHTML.slice(0, 100)}: ${rect.left.toFixed(1)} to`
                       + ` ${rect.right.toFixed(1)}px, room ${left.toFixed(1)} to`
                       + ` ${right.toFixed(1)}px`]
                    : [];
            })""",
        [selector, container],
    )
    return found
