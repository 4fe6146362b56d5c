#!/usr/bin/env python3
"""Generate src/spec/tables.rs: the versioned command sets of pykickstart as Rust data.

Run with the pykickstart the tests compare against (3.78):
    .venv/bin/python crates/kickstart/scripts/gen_tables.py > crates/kickstart/src/spec/tables.rs

Every command class used by a listed version becomes one `ClassSpec` (its argparse options and
positionals, whether it is repeatable, deprecated or removed, and which commands it conflicts
with); every version is a sorted list of (command name, class index). The section headers
(%packages, %pre, ... ) are introspected the same way.
"""
import argparse
import inspect
import sys

import pykickstart
from pykickstart import sections, options
from pykickstart.base import DeprecatedCommand, RemovedCommand
from pykickstart.parser import KickstartParser
from pykickstart.version import makeVersion

VERSIONS = ["F43", "RHEL10", "RHEL9", "F42", "F41", "F40"]

ACTIONS = {
    "_StoreAction": "Store",
    "_StoreTrueAction": "StoreTrue",
    "_StoreFalseAction": "StoreFalse",
    "_StoreConstAction": "StoreConst",
    "_AppendAction": "Append",
    "_AppendConstAction": "AppendConst",
    "_CountAction": "Count",
    "ExtendAction": "Extend",
    "ExtendConstAction": "ExtendConst",
}


def rs(s):
    """A Rust string literal."""
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def rs_list(items):
    return "&[" + ", ".join(rs(i) for i in items) + "]"


def value_type(cmd, action):
    t = action.type
    if t is None:
        return "Ty::Str"
    name = getattr(t, "__name__", "")
    if t is int:
        return "Ty::Int"
    if t is float:
        return "Ty::Float"
    if t is options.ksboolean:
        return "Ty::Bool"
    if t is options.commaSplit:
        return "Ty::CommaList"
    if t is options.mountpoint:
        return "Ty::Mountpoint"
    if name == "firewall_port_cb":
        return "Ty::PortList"
    if name in ("part_cb", "_device_cb", "_teamslaves_cb"):
        return "Ty::Str"
    if name == "_type_cb":
        return "Ty::Keyword(%s)" % rs_list(sorted(cmd.typeMap))
    if name == "level_cb":
        return "Ty::Keyword(%s)" % rs_list(sorted(cmd.levelMap))
    if name == "_level_cb":
        return "Ty::KeywordUpper(%s)" % rs_list(sorted(cmd.levelMap))
    if name == "_when_cb":
        return "Ty::Keyword(%s)" % rs_list(sorted(cmd.whenMap))
    raise SystemExit("unknown option type %r in %s" % (t, type(cmd).__name__))


def nargs(n):
    if n is None:
        return "Nargs::One"
    if n == "?":
        return "Nargs::Optional"
    if n == "*":
        return "Nargs::Any"
    if n == "+":
        return "Nargs::AtLeastOne"
    return "Nargs::Exactly(%d)" % n


def const(v):
    if v is None:
        return "None"
    if isinstance(v, bool):
        return "Some(%s)" % rs("true" if v else "false")
    if isinstance(v, list):
        return "Some(%s)" % rs(",".join(str(x) for x in v))
    return "Some(%s)" % rs(str(v))


def option_row(cmd, a):
    kind = ACTIONS[type(a).__name__]
    return ("Opt { flags: %s, dest: %s, action: Action::%s, nargs: %s, ty: %s, choices: %s, "
            "required: %s, deprecated: %s, konst: %s, metavar: %s }") % (
        rs_list(a.option_strings), rs(a.dest), kind,
        nargs(a.nargs) if kind in ("Store", "Append", "Extend") else "Nargs::Exactly(0)",
        value_type(cmd, a), rs_list([str(c) for c in a.choices]) if a.choices else "&[]",
        "true" if a.required else "false", "true" if getattr(a, "deprecated", False) else "false",
        const(a.const), "Some(%s)" % rs(a.metavar) if isinstance(a.metavar, str) else "None")


def parse_mode(klass):
    for k in klass.__mro__:
        src = k.__dict__.get("parse")
        if src is None:
            continue
        text = inspect.getsource(src)
        if "parse_known_args" in text:
            return "Parse::Known"
        if "parse_args(" in text:
            return "Parse::Strict"
        if "currentLine" in text:
            return "Parse::RawLine"
        if "if args:" in text:
            return "Parse::NoArgs"
    return "Parse::Strict"


def class_spec(name, cmd, handler):
    klass = type(cmd)
    if isinstance(cmd, RemovedCommand):
        status = "Status::Removed"
    elif isinstance(cmd, DeprecatedCommand):
        status = "Status::Deprecated"
    else:
        status = "Status::Active"
    opts, pos = [], []
    mode = "Parse::Strict"
    if status == "Status::Active":
        op = cmd._getParser()
        for a in op._actions:
            if a.option_strings:
                opts.append(option_row(cmd, a))
            else:
                pos.append("Pos { dest: %s, nargs: %s, ty: %s, required: %s, metavar: %s }" % (
                    rs(a.dest), nargs(a.nargs), value_type(cmd, a), "true" if a.required else "false",
                    "Some(%s)" % rs(a.metavar) if isinstance(a.metavar, str) else "None"))
        mode = parse_mode(klass)
    cmd.handler = handler
    repeatable = status == "Status::Active" and cmd.dataList() is not None
    return ("ClassSpec { class: %s, status: %s, parse: %s, repeatable: %s, conflicts: %s, "
            "write_priority: %s,\n        options: &[\n            %s],\n        positionals: &[%s] }") % (
        rs(klass.__name__), status, mode, "true" if repeatable else "false",
        rs_list(klass.conflictingCommands),
        "None" if cmd.writePriority is None else "Some(%d)" % cmd.writePriority,
        ",\n            ".join(opts), ", ".join(pos))


def section_spec(sec, handler):
    op = sec._getParser()
    opts = [option_row(sec, a) for a in op._actions if a.option_strings]
    return ("ClassSpec { class: %s, status: Status::Active, parse: Parse::Strict, repeatable: true, "
            "conflicts: &[], write_priority: None,\n        options: &[\n            %s],\n        positionals: &[] }") % (
        rs(sec.sectionOpen), ",\n            ".join(opts))


def main():
    classes = []  # (key, text)
    index = {}
    versions = {}
    for v in VERSIONS:
        handler = makeVersion(v)
        rows = []
        for name in sorted(handler.commands):
            cmd = handler.commands[name]
            key = (type(cmd).__name__, type(cmd).__module__, v if isinstance(cmd, (DeprecatedCommand, RemovedCommand)) else "")
            text = class_spec(name, cmd, handler)
            key = text
            if key not in index:
                index[key] = len(classes)
                classes.append(text)
            rows.append((name, index[key]))
        parser = KickstartParser(handler)
        secs = []
        for sname in sorted(parser._sections):
            sec = parser._sections[sname]
            if hasattr(sec, "_getParser"):
                text = section_spec(sec, handler)
                if text not in index:
                    index[text] = len(classes)
                    classes.append(text)
                secs.append((sname, index[text]))
            else:
                secs.append((sname, None))
        versions[v] = (rows, secs)

    out = sys.stdout
    out.write("// @generated by crates/kickstart/scripts/gen_tables.py from pykickstart %s.\n" % pykickstart.__version__)
    out.write("// Do not edit: regenerate instead.\n\n")
    out.write("use super::{Action, ClassSpec, Nargs, Opt, Parse, Pos, Status, Ty, VersionSpec};\n\n")
    out.write("/// Every command and section class used by some version.\n")
    out.write("pub(crate) static CLASSES: &[ClassSpec] = &[\n")
    for i, c in enumerate(classes):
        out.write("    // %d\n    %s,\n" % (i, c))
    out.write("];\n\n")
    for v in VERSIONS:
        rows, secs = versions[v]
        out.write("/// Kickstart syntax %s.\n" % v)
        out.write("pub(crate) static V_%s: VersionSpec = VersionSpec {\n        name: %s,\n        commands: &[\n" % (v, rs(v)))
        for name, i in rows:
            out.write("            (%s, %d),\n" % (rs(name), i))
        out.write("        ],\n        sections: &[\n")
        for name, i in secs:
            out.write("            (%s, %s),\n" % (rs(name), "None" if i is None else "Some(%d)" % i))
        out.write("        ],\n};\n\n")
    out.write("/// The versions, newest Fedora first.\n")
    out.write("pub(crate) static VERSIONS: &[&VersionSpec] = &[%s];\n" % ", ".join("&V_" + v for v in VERSIONS))


if __name__ == "__main__":
    main()
