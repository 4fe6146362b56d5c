//! The checks pykickstart's command `parse()` methods make after argparse, as a table.
//!
//! Rules are keyed by the command class name without its version prefix (`Partition` for
//! `F41_Partition`), optionally narrowed to classes of one family (`RHEL`).

use crate::argparse::Namespace;
use crate::document::{Command, Kind};
use crate::spec::{ClassSpec, Version};
use crate::value::Value;

/// One check.
#[derive(Debug)]
pub(crate) enum Rule {
    /// Leftovers are handled by a custom check of this command.
    TakesExtras,
    /// Leftovers are an error with this message.
    Extras(&'static str),
    /// At least one of these must be set.
    AnyOf(&'static [&'static str], &'static str),
    /// At most one of these may be set.
    AtMostOne(&'static [&'static str], &'static str),
    /// When the first is set, the second must be too.
    Requires(&'static str, &'static str, &'static str),
    /// When the first is set, the second must not be.
    Excludes(&'static str, &'static str, &'static str),
    /// An entry whose key values equal an earlier one's (`{}` in the message is the first
    /// key), unless the first key has the value `unless`.
    Duplicate {
        keys: &'static [&'static str],
        unless: Option<&'static str>,
        kind: Kind,
        msg: &'static str,
    },
    /// A check that does not fit the shapes above.
    Custom(fn(&Command, &mut Namespace) -> Option<String>),
}

fn text(ns: &Namespace, dest: &str) -> String {
    match ns.get(dest) {
        Some(Value::List(l)) if l.len() == 1 => l.first().cloned().unwrap_or_default(),
        Some(v) => v.to_string(),
        None => String::new(),
    }
}

impl Rule {
    pub(crate) fn check<'a>(
        &self,
        c: &Command,
        ns: &mut Namespace,
        _class: &ClassSpec,
        mut earlier: impl Iterator<Item = &'a Namespace> + Clone,
    ) -> Option<(Kind, String)> {
        let err = |m: &str| Some((Kind::Error, m.replace("{cmd}", &c.name)));
        match self {
            Rule::TakesExtras => None,
            Rule::Extras(m) => {
                if ns.extras.is_empty() {
                    None
                } else {
                    err(m)
                }
            }
            Rule::AnyOf(dests, m) => {
                if dests.iter().any(|d| ns.truthy(d)) {
                    None
                } else {
                    err(m)
                }
            }
            Rule::AtMostOne(dests, m) => {
                if dests.iter().filter(|d| ns.truthy(d)).count() > 1 {
                    err(m)
                } else {
                    None
                }
            }
            Rule::Requires(a, b, m) => {
                if ns.truthy(a) && !ns.truthy(b) {
                    err(m)
                } else {
                    None
                }
            }
            Rule::Excludes(a, b, m) => {
                if ns.truthy(a) && ns.truthy(b) {
                    err(m)
                } else {
                    None
                }
            }
            Rule::Duplicate {
                keys,
                unless,
                kind,
                msg,
            } => {
                let first = keys.first().map(|k| text(ns, k)).unwrap_or_default();
                if unless.is_some_and(|u| u == first) {
                    return None;
                }
                let ns: &Namespace = ns;
                let same = |e: &Namespace| keys.iter().all(|k| text(e, k) == text(ns, k));
                if earlier.any(same) {
                    Some((*kind, msg.replace("{}", &first)))
                } else {
                    None
                }
            }
            Rule::Custom(f) => f(c, ns).map(|m| (Kind::Error, m)),
        }
    }
}

/// (class name without version prefix, only for class names starting with this, rules)
type Entry = (&'static str, &'static str, &'static [Rule]);

fn is_false(ns: &Namespace, dest: &str) -> bool {
    matches!(ns.get(dest), Some(Value::Bool(false)))
}

fn int(ns: &Namespace, dest: &str) -> Option<i64> {
    ns.get(dest).and_then(Value::as_int)
}

/// `if not format: preexist = True` (storage commands).
fn noformat_means_existing(_c: &Command, ns: &mut Namespace) -> Option<String> {
    if is_false(ns, "format") {
        ns.set("preexist", Value::Bool(true));
    }
    None
}

fn mkfsopts_need_format(_c: &Command, ns: &mut Namespace) -> Option<String> {
    (is_false(ns, "format") && ns.truthy("mkfsopts"))
        .then(|| "--mkfsoptions with --noformat has no effect.".to_string())
}

fn extras_without_dashes(c: &Command, ns: &mut Namespace) -> Option<String> {
    ns.extras.iter().any(|a| a.starts_with('-')).then(|| {
        format!(
            "Unexpected arguments to {} command: {:?}",
            c.name, ns.extras
        )
    })
}

fn btrfs(_c: &Command, ns: &mut Namespace) -> Option<String> {
    if is_false(ns, "format") {
        ns.set("preexist", Value::Bool(true));
    } else if ns.truthy("preexist") {
        ns.set("format", Value::Bool(false));
    }
    let Some(first) = ns.extras.first().cloned() else {
        return Some("btrfs must be given a mountpoint".to_string());
    };
    if ns.extras.iter().any(|a| a.starts_with('-')) {
        return Some(format!(
            "Unexpected arguments to btrfs command: {:?}",
            ns.extras
        ));
    }
    let mp = if first.starts_with('/') {
        crate::argparse::normpath(&first)
    } else {
        first
    };
    let devices: Vec<String> = ns.extras.get(1..).unwrap_or(&[]).to_vec();
    ns.set("mountpoint", Value::Str(mp));
    if devices.is_empty() && !ns.truthy("subvol") {
        return Some("btrfs must be given a list of partitions".to_string());
    }
    if devices.is_empty() {
        return Some("btrfs subvol requires specification of parent volume".to_string());
    }
    ns.set("devices", Value::List(devices));
    ns.extras.clear();
    if ns.truthy("subvol") && !ns.truthy("name") {
        return Some("btrfs subvolume requires a name".to_string());
    }
    None
}

fn btrfs_mkfs(_c: &Command, ns: &mut Namespace) -> Option<String> {
    ((ns.truthy("preexist") || is_false(ns, "format")) && ns.truthy("mkfsopts"))
        .then(|| "--mkfsoptions with --noformat or --useexisting has no effect.".to_string())
}

fn raid_members(_c: &Command, ns: &mut Namespace) -> Option<String> {
    if !ns.truthy("partitions") && !ns.extras.is_empty() {
        let extra = std::mem::take(&mut ns.extras);
        ns.set("partitions", Value::List(extra));
    }
    if is_false(ns, "format") {
        ns.set("preexist", Value::Bool(true));
    }
    if !ns.truthy("partitions") && !ns.truthy("preexist") {
        return Some("Partitions required for raid".to_string());
    }
    if ns.truthy("partitions") && ns.truthy("preexist") {
        return Some("Members may not be specified for preexisting RAID device".to_string());
    }
    None
}

fn raid_level(_c: &Command, ns: &mut Namespace) -> Option<String> {
    if !ns.truthy("preexist") && !ns.truthy("level") {
        return Some("RAID Partition defined without RAID level".to_string());
    }
    if ns.truthy("preexist") && !ns.truthy("device") {
        return Some("Device required for preexisting RAID device".to_string());
    }
    None
}

fn volgroup(_c: &Command, ns: &mut Namespace) -> Option<String> {
    if !ns.truthy("partitions") {
        if !ns.extras.is_empty() {
            let extra = std::mem::take(&mut ns.extras);
            ns.set("partitions", Value::List(extra));
        } else if let Some(Value::List(names)) = ns.get("name").cloned()
            && let Some((first, rest)) = names.split_first()
        {
            ns.set("partitions", Value::List(rest.to_vec()));
            ns.set("name", Value::List(vec![first.clone()]));
        }
    }
    if is_false(ns, "format") {
        ns.set("preexist", Value::Bool(true));
    }
    if !ns.truthy("name") {
        return Some("volgroup must be given a VG name".to_string());
    }
    if !ns.truthy("partitions") && !ns.truthy("preexist") {
        return Some("volgroup must be given a list of partitions".to_string());
    }
    if ns.truthy("partitions") && ns.truthy("preexist") {
        return Some("Members may not be specified for preexisting volgroup".to_string());
    }
    None
}

fn volgroup_reserved(_c: &Command, ns: &mut Namespace) -> Option<String> {
    if int(ns, "reserved_space").is_some_and(|v| v < 0) {
        return Some("Volume group reserved space must be a positive integer.".to_string());
    }
    if int(ns, "reserved_percent").is_some_and(|v| !(1..100).contains(&v)) {
        return Some(
            "Volume group reserved space percentage must be between 1 and 99.".to_string(),
        );
    }
    None
}

fn hw_passphrase(_c: &Command, ns: &mut Namespace) -> Option<String> {
    let luks2 = ns
        .get("luks_version")
        .and_then(Value::as_str)
        .is_some_and(|v| v.starts_with("luks2-"));
    (ns.truthy("hw_passphrase") && (!ns.truthy("encrypted") || !luks2)).then(|| {
        "hw-passphrase may be specified only with LUKSv2 HW-OPAL encrypted devices".to_string()
    })
}

fn tmpfs(_c: &Command, ns: &mut Namespace) -> Option<String> {
    let tmpfs = ns.get("fstype").and_then(Value::as_str) == Some("tmpfs");
    (tmpfs && (ns.truthy("grow") || int(ns, "maxSizeMB").is_some_and(|v| v != 0))).then(|| {
        "The --fstype=tmpfs option can't be used together with --grow or --maxsize".to_string()
    })
}

fn rhel_part_btrfs(_c: &Command, ns: &mut Namespace) -> Option<String> {
    let mp = text(ns, "mntpoint");
    let fs = ns.get("fstype").and_then(Value::as_str) == Some("btrfs");
    (mp.starts_with("btrfs.") || fs).then(|| "Btrfs file system is not supported".to_string())
}

fn rhel_fstype_btrfs(_c: &Command, ns: &mut Namespace) -> Option<String> {
    (ns.get("fstype").and_then(Value::as_str) == Some("btrfs"))
        .then(|| "Btrfs file system is not supported".to_string())
}

fn logvol(_c: &Command, ns: &mut Namespace) -> Option<String> {
    if is_false(ns, "format") {
        ns.set("preexist", Value::Bool(true));
    }
    None
}

fn logvol_checks(_c: &Command, ns: &mut Namespace) -> Option<String> {
    let t = |d: &str| ns.truthy(d);
    if t("resize") && !t("preexist") {
        return Some("--resize can only be used in conjunction with --useexisting".into());
    }
    if t("resize") && !t("size") {
        return Some("--resize requires --size to indicate new size".into());
    }
    if t("thin_volume") && t("thin_pool") {
        return Some("--thin and --thinpool cannot both be specified for the same logvol".into());
    }
    if t("thin_volume") && !t("pool_name") {
        return Some("--thin requires --poolname to specify pool name".into());
    }
    if (t("chunk_size") || t("metadata_size")) && !t("thin_pool") {
        return Some("--chunksize and --metadatasize are for thin pools only".into());
    }
    if !t("preexist") && !t("percent") && !t("size") && !t("recommended") && !t("hibernation") {
        return Some(
            "No size given for logical volume. Use one of --useexisting, --noformat, --size, \
             --percent, or --hibernation."
                .into(),
        );
    }
    if int(ns, "percent").is_some_and(|p| !(0..=100).contains(&p)) {
        return Some("Percentage must be between 0 and 100.".into());
    }
    if t("size") && t("percent") {
        return Some("--size and --percent cannot both be specified for the same logvol".into());
    }
    if t("cache_size") || t("cache_mode") || t("cache_pvs") {
        if t("preexist") {
            return Some("Adding a cache to an existing logical volume is not supported".into());
        }
        if t("thin_volume") {
            return Some("Thin volumes cannot be cached".into());
        }
        if !t("cache_pvs") {
            return Some("Cache needs to have a list of (fast) PVs specified".into());
        }
        if !t("cache_size") {
            return Some("Cache needs to have size specified".into());
        }
        let mode = text(ns, "cache_mode");
        if t("cache_mode") && mode != "writeback" && mode != "writethrough" {
            return Some(format!("Invalid cache mode given: {mode}"));
        }
    }
    if is_false(ns, "format") && t("mkfsopts") {
        return Some("--mkfsoptions with --noformat has no effect.".into());
    }
    if t("fsprofile") && t("mkfsopts") {
        return Some("--mkfsoptions and --fsprofile cannot be used together.".into());
    }
    None
}

fn network_checks(_c: &Command, ns: &mut Namespace) -> Option<String> {
    if ns.truthy("bridgeopts") {
        if !ns.truthy("bridgeslaves") {
            return Some("Option --bridgeopts requires --bridgeslaves to be specified".into());
        }
        let opts = text(ns, "bridgeopts");
        for opt in opts.split(',') {
            let value = opt.split_once('=').map_or("", |(_, v)| v);
            if value.is_empty() || value.contains('=') {
                return Some(
                    "Bad format of --bridgeopts, expecting key=value options separated by ','"
                        .into(),
                );
            }
        }
    }
    if text(ns, "bindto") == "mac" && ns.truthy("vlanid") && !ns.truthy("bondopts") {
        return Some("--bindto=mac is not supported for this type of device".into());
    }
    if !ns.truthy("device") {
        for (d, o) in [
            ("ipv4_dns_search", "--ipv4-dns-search"),
            ("ipv6_dns_search", "--ipv6-dns-search"),
            ("ipv4_ignore_auto_dns", "--ipv4-ignore-auto-dns"),
            ("ipv6_ignore_auto_dns", "--ipv6-ignore-auto-dns"),
        ] {
            if ns.truthy(d) {
                return Some(format!("Option {o} requires --device to be specified"));
            }
        }
    }
    None
}

fn timezone(c: &Command, ns: &mut Namespace) -> Option<String> {
    if c.args.is_empty() {
        return Some(
            "At least one option and/or an argument are expected for the timezone command".into(),
        );
    }
    if ns
        .get("timezone")
        .and_then(Value::as_list)
        .is_some_and(|l| l.len() > 1)
    {
        return Some("One or zero arguments are expected for the timezone command".into());
    }
    if ns.truthy("ntpservers") && ns.truthy("nontp") {
        return Some("Options --nontp and --ntpservers are mutually exclusive".into());
    }
    None
}

fn ignoredisk(_c: &Command, ns: &mut Namespace) -> Option<String> {
    let n = ["ignoredisk", "onlyuse", "interactive"]
        .iter()
        .filter(|d| ns.truthy(d))
        .count();
    (n != 1).then(|| {
        "One of --drives , --only-use , or --interactive must be specified for ignoredisk command."
            .into()
    })
}

fn keyboard(_c: &Command, ns: &mut Namespace) -> Option<String> {
    let kbd = ns
        .get("kbd")
        .and_then(Value::as_list)
        .map_or(0, <[String]>::len);
    if kbd > 1 {
        return Some("A single argument is expected for the keyboard command".into());
    }
    if !ns.extras.is_empty() {
        return Some(format!(
            "Unexpected arguments to keyboard command: {:?}",
            ns.extras
        ));
    }
    if kbd == 0 && !ns.truthy("vc_keymap") && !ns.truthy("x_layouts") {
        return Some(
            "One of --xlayouts, --vckeymap options with value(s) or argument is expected for the \
             keyboard command"
                .into(),
        );
    }
    None
}

fn driverdisk(_c: &Command, ns: &mut Namespace) -> Option<String> {
    let parts = ns
        .get("partition")
        .and_then(Value::as_list)
        .map_or(0, <[String]>::len);
    if parts > 1 {
        return Some("Only one partition may be specified for driverdisk command.".into());
    }
    if !ns.extras.is_empty() {
        return Some(format!(
            "Unexpected arguments to driverdisk command: {:?}",
            ns.extras
        ));
    }
    let (p, s, b) = (parts > 0, ns.truthy("source"), ns.truthy("biospart"));
    if [p, s, b].iter().filter(|x| **x).count() > 1 {
        return Some("Only one of --source, --biospart and partition may be given".into());
    }
    if !p && !s && !b {
        return Some(
            "One of --source, --biospart, or partition must be specified for driverdisk command."
                .into(),
        );
    }
    None
}

fn mount(_c: &Command, ns: &mut Namespace) -> Option<String> {
    let mp = text(ns, "mntpoint");
    if mp.to_lowercase() != "none" && !mp.starts_with('/') {
        return Some(format!("Invalid mount point '{mp}' given"));
    }
    if !ns.truthy("reformat") && ns.truthy("mkfs_opts") {
        return Some("'--mkfsoptions' requires --reformat".into());
    }
    None
}

fn zfcp(_c: &Command, ns: &mut Namespace) -> Option<String> {
    let (d, w, f) = (ns.truthy("devnum"), ns.truthy("wwpn"), ns.truthy("fcplun"));
    let alone = d && !w && !f;
    let full = d && w && f;
    (!alone && !full)
        .then(|| "Only --devnum or --devnum with --wwpn and --fcplun are allowed.".into())
}

fn snapshot(_c: &Command, ns: &mut Namespace) -> Option<String> {
    if !ns.truthy("when") && ns.get("when").is_none() {
        return Some("Snapshot \"when\" parameter must be specified!".into());
    }
    let origin = text(ns, "origin");
    let groups: Vec<&str> = origin.split('/').collect();
    if groups.len() != 2 || groups.iter().any(|g| g.is_empty()) {
        return Some(format!(
            "Snapshot origin {origin} must be specified by VG/LV!"
        ));
    }
    None
}

fn rootpw(_c: &Command, ns: &mut Namespace) -> Option<String> {
    if !ns.truthy("password") && !ns.truthy("lock") {
        return Some("A single argument is expected for the rootpw command".into());
    }
    None
}

fn sshpw(_c: &Command, ns: &mut Namespace) -> Option<String> {
    (!ns.truthy("password")).then(|| "A single argument is expected for the sshpw command".into())
}

fn ostreesetup(_c: &Command, ns: &mut Namespace) -> Option<String> {
    let url = text(ns, "url");
    (!["file:", "http:", "https:"]
        .iter()
        .any(|p| url.starts_with(p)))
    .then(|| "ostree repos must use file, HTTP or HTTPS protocol.".into())
}

fn autopart_btrfs(_c: &Command, ns: &mut Namespace) -> Option<String> {
    if ns.get("fstype").and_then(Value::as_str) == Some("btrfs") {
        return Some(
            "autopart --fstype=btrfs is not valid fstype, use --type=btrfs instead".into(),
        );
    }
    (text(ns, "type") == "btrfs" && ns.truthy("fstype"))
        .then(|| "autopart --fstype cannot be used with --type=btrfs".into())
}

fn rhel_autopart(_c: &Command, ns: &mut Namespace) -> Option<String> {
    (text(ns, "type") == "btrfs").then(|| "autopart --type=btrfs is not supported".into())
}

fn bootloader_drive(_c: &Command, ns: &mut Namespace) -> Option<String> {
    text(ns, "bootDrive")
        .contains(',')
        .then(|| "--boot-drive accepts only one argument".into())
}

fn cmdline_noninteractive(c: &Command, ns: &mut Namespace) -> Option<String> {
    (c.name == "cmdline" && ns.truthy("nonInteractive"))
        .then(|| "Kickstart command cmdline does not support --non-interactive parameter".into())
}

fn rhsm(_c: &Command, ns: &mut Namespace) -> Option<String> {
    ns.get("activation_keys")
        .and_then(Value::as_list)
        .is_some_and(|l| l.iter().any(String::is_empty))
        .then(|| "Empty string is not a valid activation key.".into())
}

/// `realm join [options] REALM`, parsed with Python's `getopt` (not argparse).
fn realm(c: &Command, _ns: &mut Namespace) -> Option<String> {
    const LONG: &[(&str, bool)] = &[
        ("client-software", true),
        ("server-software", true),
        ("membership-software", true),
        ("one-time-password", true),
        ("no-password", false),
        ("computer-ou", true),
    ];
    let rest = c.raw.trim_start_matches(crate::lex::py_isspace);
    let rest = rest.get(c.name.len()..).unwrap_or("");
    let args = match crate::lex::split(rest, false) {
        Ok(a) => a,
        Err(e) => return Some(e.message().to_string()),
    };
    let Some((command, args)) = args.split_first() else {
        return Some("Missing realm command arguments".into());
    };
    if command != "join" {
        return Some(format!("Unsupported realm '{command}' command"));
    }
    let mut i = 0;
    while let Some(a) = args.get(i) {
        if a == "--" {
            i += 1;
            break;
        }
        // getopt with no short options: `-x` is an unknown option, a lone `-` an operand.
        if a.len() > 1 && a.starts_with('-') && !a.starts_with("--") {
            let c = a[1..].chars().next().unwrap_or_default();
            return Some(format!(
                "Invalid realm arguments: option -{c} not recognized"
            ));
        }
        let Some(opt) = a.strip_prefix("--") else {
            break;
        };
        let (name, value) = match opt.split_once('=') {
            Some((n, v)) => (n, Some(v)),
            None => (opt, None),
        };
        let hits: Vec<&(&str, bool)> = LONG.iter().filter(|(l, _)| l.starts_with(name)).collect();
        let hit = match hits.as_slice() {
            [] => {
                return Some(format!(
                    "Invalid realm arguments: option --{name} not recognized"
                ));
            }
            [one] => *one,
            many => match many.iter().find(|(l, _)| *l == name) {
                Some(h) => *h,
                None => {
                    return Some(format!(
                        "Invalid realm arguments: option --{name} not a unique prefix"
                    ));
                }
            },
        };
        i += 1;
        match (hit.1, value) {
            (false, Some(_)) => {
                return Some(format!(
                    "Invalid realm arguments: option --{} must not have an argument",
                    hit.0
                ));
            }
            (true, None) => {
                if args.get(i).is_none() {
                    return Some(format!(
                        "Invalid realm arguments: option --{} requires argument",
                        hit.0
                    ));
                }
                i += 1;
            }
            _ => {}
        }
    }
    (args.len().saturating_sub(i) != 1).then(|| "Specify only one realm to join".into())
}

fn logging(_c: &Command, ns: &mut Namespace) -> Option<String> {
    (ns.truthy("port") && !ns.truthy("host")).then(|| "Can't specify --port without --host.".into())
}

const PBKDF: Rule = Rule::AtMostOne(
    &["pbkdf_time", "pbkdf_iterations"],
    "Only one of --pbkdf-time and --pbkdf-iterations can be specified.",
);
const MKFS_PROFILE: Rule = Rule::AtMostOne(
    &["fsprofile", "mkfsopts"],
    "--mkfsoptions and --fsprofile cannot be used together.",
);

static RULES: &[Entry] = &[
    (
        "Partition",
        "",
        &[
            Rule::Duplicate {
                keys: &["mntpoint"],
                unless: Some("swap"),
                kind: Kind::Warning,
                msg: "A partition with the mountpoint {} has already been defined.",
            },
            Rule::Requires(
                "resize",
                "onPart",
                "--resize can only be used in conjunction with --onpart",
            ),
            Rule::Requires(
                "resize",
                "size",
                "--resize requires --size to specify new size",
            ),
            Rule::Custom(tmpfs),
            Rule::Custom(mkfsopts_need_format),
            MKFS_PROFILE,
            PBKDF,
            Rule::Custom(hw_passphrase),
            Rule::Custom(rhel_only_part),
        ],
    ),
    (
        "LogVol",
        "",
        &[
            Rule::Custom(logvol),
            Rule::Duplicate {
                keys: &["vgname", "name"],
                unless: None,
                kind: Kind::Warning,
                msg: "A logical volume with the name {} has already been defined in that volume group.",
            },
            Rule::Custom(logvol_checks),
            PBKDF,
            Rule::Custom(rhel_only_fstype),
        ],
    ),
    (
        "Raid",
        "",
        &[
            Rule::TakesExtras,
            Rule::Custom(extras_without_dashes),
            Rule::Custom(raid_members),
            Rule::Duplicate {
                keys: &["device"],
                unless: None,
                kind: Kind::Warning,
                msg: "A RAID device with the name {} has already been defined.",
            },
            Rule::Custom(raid_level),
            Rule::Custom(mkfsopts_need_format),
            MKFS_PROFILE,
            PBKDF,
        ],
    ),
    (
        "BTRFS",
        "",
        &[
            Rule::TakesExtras,
            Rule::Custom(btrfs),
            Rule::Duplicate {
                keys: &["mountpoint"],
                unless: None,
                kind: Kind::Warning,
                msg: "A btrfs volume with the mountpoint {} has already been defined.",
            },
            Rule::Custom(btrfs_mkfs),
        ],
    ),
    (
        "VolGroup",
        "",
        &[
            Rule::TakesExtras,
            Rule::Custom(volgroup),
            Rule::Duplicate {
                keys: &["name"],
                unless: None,
                kind: Kind::Warning,
                msg: "A volgroup with the name {} has already been defined.",
            },
            Rule::Custom(volgroup_reserved),
            Rule::Custom(noformat_means_existing),
        ],
    ),
    (
        "Network",
        "",
        &[
            Rule::Duplicate {
                keys: &["device"],
                unless: None,
                kind: Kind::Warning,
                msg: "A network device with the name {} has already been defined.",
            },
            Rule::Custom(network_checks),
        ],
    ),
    (
        "Repo",
        "",
        &[
            Rule::AtMostOne(
                &["baseurl", "mirrorlist", "metalink"],
                "Only one of --baseurl, --mirrorlist, --metalink options may be specified for repo command.",
            ),
            Rule::Duplicate {
                keys: &["name"],
                unless: None,
                kind: Kind::Warning,
                msg: "A repo with the name {} has already been defined.",
            },
        ],
    ),
    (
        "Url",
        "",
        &[
            Rule::AnyOf(
                &["url", "mirrorlist", "metalink"],
                "One of --url, --mirrorlist, --metalink options must be specified for url command.",
            ),
            Rule::AtMostOne(
                &["url", "mirrorlist", "metalink"],
                "Only one of --url, --mirrorlist, --metalink options may be specified for url command.",
            ),
        ],
    ),
    (
        "Timesource",
        "",
        &[
            Rule::AnyOf(
                &["ntp_server", "ntp_pool", "ntp_disable"],
                "One of --ntp-server, --ntp-pool, --ntp-disable options must be specified for timesource command.",
            ),
            Rule::AtMostOne(
                &["ntp_server", "ntp_pool", "ntp_disable"],
                "Only one of --ntp-server, --ntp-pool, --ntp-disable options may be specified for timesource command.",
            ),
        ],
    ),
    ("Timezone", "", &[Rule::Custom(timezone)]),
    (
        "User",
        "",
        &[Rule::Duplicate {
            keys: &["name"],
            unless: None,
            kind: Kind::Warning,
            msg: "A user with the name {} has already been defined.",
        }],
    ),
    (
        "Group",
        "",
        &[Rule::Duplicate {
            keys: &["name"],
            unless: None,
            kind: Kind::Warning,
            msg: "A group with the name {} has already been defined.",
        }],
    ),
    (
        "SshKey",
        "",
        &[Rule::Duplicate {
            keys: &["username"],
            unless: None,
            kind: Kind::Warning,
            msg: "An ssh user with the name {} has already been defined.",
        }],
    ),
    (
        "SshPw",
        "",
        &[
            Rule::Custom(sshpw),
            Rule::Duplicate {
                keys: &["username"],
                unless: None,
                kind: Kind::Warning,
                msg: "An ssh user with the name {} has already been defined.",
            },
        ],
    ),
    (
        "Fcoe",
        "",
        &[Rule::Duplicate {
            keys: &["nic"],
            unless: None,
            kind: Kind::Warning,
            msg: "A FCOE device with the name {} has already been defined.",
        }],
    ),
    (
        "ZFCP",
        "",
        &[
            Rule::Duplicate {
                keys: &["devnum", "wwpn", "fcplun"],
                unless: None,
                kind: Kind::Warning,
                msg: "A zfcp with this information has already been defined.",
            },
            Rule::Custom(zfcp),
        ],
    ),
    (
        "Snapshot",
        "",
        &[
            Rule::Duplicate {
                keys: &["name"],
                unless: None,
                kind: Kind::Error,
                msg: "Snapshot with the name {} has been already defined!",
            },
            Rule::Custom(snapshot),
        ],
    ),
    ("IgnoreDisk", "", &[Rule::Custom(ignoredisk)]),
    ("Keyboard", "", &[Rule::TakesExtras, Rule::Custom(keyboard)]),
    (
        "DriverDisk",
        "",
        &[Rule::TakesExtras, Rule::Custom(driverdisk)],
    ),
    ("Mount", "", &[Rule::Custom(mount)]),
    ("RootPw", "", &[Rule::Custom(rootpw)]),
    ("OSTreeSetup", "", &[Rule::Custom(ostreesetup)]),
    (
        "AutoPart",
        "",
        &[
            Rule::Custom(autopart_btrfs),
            PBKDF,
            Rule::Excludes(
                "hibernation",
                "noswap",
                "autopart --hibernation and --noswap cannot be used together",
            ),
            Rule::Custom(hw_passphrase),
            Rule::Custom(rhel_only_autopart),
        ],
    ),
    (
        "Bootloader",
        "",
        &[
            Rule::Custom(bootloader_drive),
            Rule::Excludes(
                "sdboot",
                "extlinux",
                "Only one of --sdboot and --extlinux may be specified for bootloader command.",
            ),
        ],
    ),
    ("DisplayMode", "", &[Rule::Custom(cmdline_noninteractive)]),
    (
        "Eula",
        "",
        &[
            Rule::Extras("Kickstart command eula does not take any arguments"),
            Rule::AnyOf(
                &["agreed"],
                "Kickstart command eula expects the --agreed option",
            ),
        ],
    ),
    (
        "Services",
        "",
        &[Rule::AnyOf(
            &["disabled", "enabled"],
            "One of --disabled or --enabled must be provided.",
        )],
    ),
    (
        "Rescue",
        "",
        &[Rule::Excludes(
            "nomount",
            "romount",
            "Only one of --nomount and --romount may be specified for rescue command.",
        )],
    ),
    ("Logging", "", &[Rule::Custom(logging)]),
    ("RHSM", "", &[Rule::Custom(rhsm)]),
    (
        "Realm",
        "",
        &[
            Rule::Duplicate {
                keys: &[],
                unless: None,
                kind: Kind::Error,
                msg: "The realm command 'join' should only be specified once",
            },
            Rule::Custom(realm),
        ],
    ),
    (
        "Syspurpose",
        "",
        &[Rule::Extras(
            "The syspurpose command does not take positional arguments!",
        )],
    ),
];

fn rhel_only_part(c: &Command, ns: &mut Namespace) -> Option<String> {
    RHEL.with_rhel(c, ns, rhel_part_btrfs)
}
fn rhel_only_fstype(c: &Command, ns: &mut Namespace) -> Option<String> {
    RHEL.with_rhel(c, ns, rhel_fstype_btrfs)
}
fn rhel_only_autopart(c: &Command, ns: &mut Namespace) -> Option<String> {
    RHEL.with_rhel(c, ns, rhel_autopart)
}

/// RHEL-only checks run when the namespace is marked as parsed for a RHEL class.
struct Rhel;
const RHEL: Rhel = Rhel;
impl Rhel {
    fn with_rhel(
        &self,
        c: &Command,
        ns: &mut Namespace,
        f: fn(&Command, &mut Namespace) -> Option<String>,
    ) -> Option<String> {
        if ns.truthy(RHEL_MARK) { f(c, ns) } else { None }
    }
}

/// A namespace entry the validator sets for RHEL command classes.
pub(crate) const RHEL_MARK: &str = "\u{0}rhel";

/// The rules for a command class in a version.
pub(crate) fn rules_for(class: &ClassSpec, _version: Version) -> &'static [Rule] {
    let short = class.class.split_once('_').map_or(class.class, |(_, s)| s);
    RULES
        .iter()
        .find(|(name, family, _)| *name == short && class.class.starts_with(family))
        .map_or(&[], |(_, _, r)| r)
}
