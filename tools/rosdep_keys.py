"""Check that every dependency key of a package.xml resolves as ``rosdep install --from-paths`` would.

Why: a key rosdep cannot resolve stops ``rosdep install`` for the whole workspace (as
``python3-safetensors`` once did), and nothing in a pip-only CI runs rosdep. This checks the keys
offline against rosdistro's files (``base.yaml``, ``python.yaml`` and ``<distro>/distribution.yaml``,
as kept in ``../shared/rosdep``): a key resolves when it is a ROS package released in the
distribution, or a system key with a rule for the OS and release (``'*'`` wildcards included,
a null rule meaning "not available there").

    python tools/rosdep_keys.py package.xml --rosdep ../shared/rosdep --distro kilted jazzy

prints one line per unresolved key and exits 1 if there is any (2 on bad input).
"""

from __future__ import annotations

import argparse
import sys
import xml.etree.ElementTree as ET
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml

#: the dependency tags of package.xml format 2 and 3 whose keys rosdep resolves
DEPEND_TAGS = (
    "depend",
    "build_depend",
    "build_export_depend",
    "buildtool_depend",
    "buildtool_export_depend",
    "exec_depend",
    "test_depend",
    "doc_depend",
)
INSTALLERS = ("apt", "pip", "source", "npm", "gem")
_Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def package_keys(package_xml: Path) -> list[tuple[str, str]]:
    """(tag, key) of every dependency in ``package_xml``, in file order."""
    root = ET.parse(package_xml).getroot()
    return [(el.tag, (el.text or "").strip()) for el in root if el.tag in DEPEND_TAGS]


@lru_cache(maxsize=4)
def system_rules(rosdep_dir: Path) -> dict[str, Any]:
    """The system keys of ``base.yaml`` and ``python.yaml`` (key → rules per OS)."""
    rules: dict[str, Any] = {}
    for name in ("base.yaml", "python.yaml"):
        rules.update(yaml.load((rosdep_dir / name).read_text(), Loader=_Loader) or {})
    return rules


@lru_cache(maxsize=8)
def released_packages(rosdep_dir: Path, distro: str) -> frozenset[str]:
    """The ROS packages released in ``distro`` (a repository's ``release.packages``, else its name)."""
    index = yaml.load((rosdep_dir / distro / "distribution.yaml").read_text(), Loader=_Loader)
    out: set[str] = set()
    for repo, entry in (index.get("repositories") or {}).items():
        release = (entry or {}).get("release") or {}
        if release.get("version"):
            out.update(release.get("packages") or [repo])
    return frozenset(out)


def _has_rule(rules: Any, os_name: str, release: str) -> bool:
    """Whether a system key's rules install something (or nothing, by design) on os/release."""
    if not isinstance(rules, dict):
        return False
    per_os = rules.get(os_name, rules.get("*"))
    if per_os is None:
        return False
    if isinstance(per_os, list):
        return True
    if not isinstance(per_os, dict):
        return False
    if any(k in INSTALLERS for k in per_os):
        return True
    per_release = per_os.get(release, per_os.get("*"))
    return per_release is not None


def unresolved(
    package_xml: Path, rosdep_dir: Path, distro: str, os_name: str = "ubuntu", release: str = "noble"
) -> list[str]:
    """One line per key of ``package_xml`` that does not resolve for ``distro`` on os/release."""
    rosdep_dir = rosdep_dir.resolve()
    rules, released = system_rules(rosdep_dir), released_packages(rosdep_dir, distro)
    bad = []
    for tag, key in package_keys(package_xml):
        if key in released:
            continue
        if key in rules:
            if not _has_rule(rules[key], os_name, release):
                bad.append(f"{tag} {key!r}: a rosdep key, but with no rule for {os_name} {release}")
        else:
            bad.append(
                f"{tag} {key!r}: neither a rosdep system key (base.yaml, python.yaml) nor a ROS package "
                f"released in {distro}; put a pip-only dependency in requirements-ros.txt instead"
            )
    return bad


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("package_xml", type=Path)
    parser.add_argument(
        "--rosdep", type=Path, required=True, help="folder with base.yaml, python.yaml and <distro>/"
    )
    parser.add_argument("--distro", nargs="+", default=["kilted", "jazzy"])
    parser.add_argument("--os", default="ubuntu:noble", help="OS:release (default ubuntu:noble)")
    args = parser.parse_args(argv)
    os_name, _, release = args.os.partition(":")
    missing = [p for p in [args.package_xml, args.rosdep / "base.yaml"] if not p.is_file()]
    missing += [args.rosdep / d / "distribution.yaml" for d in args.distro]
    missing = [p for p in missing if not p.is_file()]
    if missing:
        print(f"rosdep_keys: not found: {', '.join(map(str, missing))}", file=sys.stderr)
        return 2
    failed = False
    for distro in args.distro:
        for line in unresolved(args.package_xml, args.rosdep, distro, os_name, release):
            print(f"{distro}: {line}")
            failed = True
    if not failed:
        print(f"every key of {args.package_xml} resolves for {', '.join(args.distro)} on {os_name} {release}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
