//! A typed view of what an image pipeline needs from a kickstart, built from the commands
//! that parsed cleanly for a version. Commands without a typed field are still available,
//! generically, in [`Model::commands`].

use serde::Serialize;

use crate::argparse::Namespace;
use crate::document::{Item, Location, SectionKind};
use crate::read::Kickstart;
use crate::spec::Version;
use crate::validate::{Session, check_command};
use crate::value::Value;

fn s(ns: &Namespace, d: &str) -> Option<String> {
    match ns.get(d)? {
        Value::Str(v) => Some(v.clone()),
        Value::List(l) if l.len() == 1 => l.first().cloned(),
        Value::None => None,
        other => Some(other.to_string()),
    }
}
fn i(ns: &Namespace, d: &str) -> Option<i64> {
    ns.get(d).and_then(Value::as_int)
}
fn b(ns: &Namespace, d: &str) -> bool {
    ns.truthy(d)
}
fn l(ns: &Namespace, d: &str) -> Vec<String> {
    match ns.get(d) {
        Some(Value::List(v)) => v.clone(),
        Some(Value::Str(v)) => vec![v.clone()],
        _ => Vec::new(),
    }
}

/// LUKS settings shared by `part`, `logvol`, `raid` and `autopart`.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Encryption {
    /// `--encrypted`.
    pub encrypted: bool,
    /// `--luks-version` (`luks1`, `luks2`, ...).
    pub luks_version: Option<String>,
    /// `--pbkdf` (`argon2id`, `argon2i`, `pbkdf2`).
    pub pbkdf: Option<String>,
    /// `--pbkdf-memory` in KiB.
    pub pbkdf_memory: Option<i64>,
    /// `--pbkdf-time` in milliseconds.
    pub pbkdf_time: Option<i64>,
    /// `--pbkdf-iterations`.
    pub pbkdf_iterations: Option<i64>,
    /// `--passphrase`.
    pub passphrase: Option<String>,
    /// `--cipher`.
    pub cipher: Option<String>,
}

impl Encryption {
    fn from(ns: &Namespace) -> Self {
        Encryption {
            encrypted: b(ns, "encrypted"),
            luks_version: s(ns, "luks_version"),
            pbkdf: s(ns, "pbkdf"),
            pbkdf_memory: i(ns, "pbkdf_memory"),
            pbkdf_time: i(ns, "pbkdf_time"),
            pbkdf_iterations: i(ns, "pbkdf_iterations"),
            passphrase: s(ns, "passphrase"),
            cipher: s(ns, "cipher"),
        }
    }
}

/// `part` / `partition`.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Partition {
    /// Mount point (`/`, `swap`, `pv.01`, `raid.01`, `biosboot`, ...).
    pub mountpoint: String,
    /// `--size` in MiB.
    pub size: Option<i64>,
    /// `--maxsize` in MiB.
    pub max_size: Option<i64>,
    /// `--grow`.
    pub grow: bool,
    /// `--fstype`.
    pub fstype: Option<String>,
    /// `--label`.
    pub label: Option<String>,
    /// `--ondisk`.
    pub disk: Option<String>,
    /// `--onpart`.
    pub onpart: Option<String>,
    /// `--asprimary`.
    pub primary: bool,
    /// `--noformat` (false) or not.
    pub format: bool,
    /// `--fsoptions`.
    pub fsoptions: Option<String>,
    /// `--mkfsoptions`.
    pub mkfsoptions: Option<String>,
    /// LUKS settings.
    pub encryption: Encryption,
    /// Where it was defined.
    pub location: Location,
}

/// `clearpart`.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct ClearPart {
    /// `all`, `linux`, `none` or `list` (`--list`); None when not given.
    pub kind: Option<String>,
    /// `--drives`.
    pub drives: Vec<String>,
    /// `--list` devices.
    pub devices: Vec<String>,
    /// `--initlabel`.
    pub initlabel: bool,
    /// `--disklabel` (`gpt`, `msdos`).
    pub disklabel: Option<String>,
}

/// `bootloader`.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Bootloader {
    /// `--location` (`mbr`, `partition`, `none`, `boot`).
    pub location: Option<String>,
    /// `--append`.
    pub append: Option<String>,
    /// `--timeout` in seconds.
    pub timeout: Option<i64>,
    /// `--boot-drive`.
    pub boot_drive: Option<String>,
    /// `--driveorder`.
    pub driveorder: Vec<String>,
    /// `--password`.
    pub password: Option<String>,
    /// `--iscrypted`.
    pub iscrypted: bool,
    /// `--disabled`.
    pub disabled: bool,
    /// `--sdboot`.
    pub sdboot: bool,
    /// `--extlinux`.
    pub extlinux: bool,
}

/// `autopart`.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct AutoPart {
    /// `--type` (`lvm`, `plain`, `thinp`, `btrfs`), `plain` for `--nolvm`.
    pub kind: Option<String>,
    /// `--fstype`.
    pub fstype: Option<String>,
    /// `--nohome`.
    pub nohome: bool,
    /// `--noboot`.
    pub noboot: bool,
    /// `--noswap`.
    pub noswap: bool,
    /// LUKS settings.
    pub encryption: Encryption,
}

/// `lang`.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Lang {
    /// The language (`en_US.UTF-8`).
    pub lang: String,
    /// `--addsupport`.
    pub addsupport: Vec<String>,
}

/// `keyboard`.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Keyboard {
    /// The positional keyboard, if given.
    pub keyboard: Option<String>,
    /// `--vckeymap`.
    pub vckeymap: Option<String>,
    /// `--xlayouts`.
    pub xlayouts: Vec<String>,
    /// `--switch`.
    pub switch: Vec<String>,
}

/// `timezone`.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Timezone {
    /// The zone (`Europe/Prague`).
    pub timezone: Option<String>,
    /// `--utc`.
    pub utc: bool,
    /// `--nontp`.
    pub nontp: bool,
    /// `--ntpservers`.
    pub ntpservers: Vec<String>,
}

/// `network`.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Network {
    /// `--device`.
    pub device: Option<String>,
    /// `--bootproto` (`dhcp`, `static`, ...).
    pub bootproto: Option<String>,
    /// `--ip`.
    pub ip: Option<String>,
    /// `--netmask`.
    pub netmask: Option<String>,
    /// `--gateway`.
    pub gateway: Option<String>,
    /// `--nameserver`.
    pub nameserver: Option<String>,
    /// `--hostname`.
    pub hostname: Option<String>,
    /// `--onboot`.
    pub onboot: Option<bool>,
    /// `--activate` / `--no-activate`.
    pub activate: Option<bool>,
    /// `--noipv6`.
    pub noipv6: bool,
}

/// `rootpw`.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct RootPw {
    /// The password, if given.
    pub password: Option<String>,
    /// `--iscrypted`.
    pub iscrypted: bool,
    /// `--lock`.
    pub lock: bool,
    /// `--allow-ssh`.
    pub allow_ssh: bool,
}

/// `user`.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct User {
    /// `--name`.
    pub name: String,
    /// `--groups`.
    pub groups: Vec<String>,
    /// `--homedir`.
    pub homedir: Option<String>,
    /// `--shell`.
    pub shell: Option<String>,
    /// `--uid`.
    pub uid: Option<i64>,
    /// `--gid`.
    pub gid: Option<i64>,
    /// `--gecos`.
    pub gecos: Option<String>,
    /// `--password`.
    pub password: Option<String>,
    /// `--iscrypted`.
    pub iscrypted: bool,
    /// `--lock`.
    pub lock: bool,
}

/// `services`.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Services {
    /// `--enabled`.
    pub enabled: Vec<String>,
    /// `--disabled`.
    pub disabled: Vec<String>,
}

/// `firewall`.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Firewall {
    /// `--enabled` (default) or `--disabled`.
    pub enabled: bool,
    /// `--port` (`22:tcp`).
    pub ports: Vec<String>,
    /// `--service` and `--ssh`, `--http`, ...
    pub services: Vec<String>,
    /// `--remove-service`.
    pub remove_services: Vec<String>,
    /// `--trust`.
    pub trusts: Vec<String>,
    /// `--use-system-defaults`.
    pub use_system_defaults: bool,
}

/// `url` (the installation source).
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Url {
    /// `--url`.
    pub url: Option<String>,
    /// `--mirrorlist`.
    pub mirrorlist: Option<String>,
    /// `--metalink`.
    pub metalink: Option<String>,
    /// `--proxy`.
    pub proxy: Option<String>,
    /// `--noverifyssl`.
    pub noverifyssl: bool,
}

/// `repo`.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Repo {
    /// `--name`.
    pub name: String,
    /// `--baseurl`.
    pub baseurl: Option<String>,
    /// `--mirrorlist`.
    pub mirrorlist: Option<String>,
    /// `--metalink`.
    pub metalink: Option<String>,
    /// `--cost`.
    pub cost: Option<i64>,
    /// `--install`.
    pub install: bool,
    /// `--excludepkgs`.
    pub excludepkgs: Vec<String>,
    /// `--includepkgs`.
    pub includepkgs: Vec<String>,
}

/// A group in `%packages`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Group {
    /// The group id.
    pub name: String,
    /// `--nodefaults`.
    pub nodefaults: bool,
    /// `--optional`.
    pub optional: bool,
}

/// `%packages`, merged over all sections as pykickstart merges them.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Packages {
    /// `@^environment`.
    pub environment: Option<String>,
    /// `@group` lines.
    pub groups: Vec<Group>,
    /// Package names and globs.
    pub packages: Vec<String>,
    /// `-@group` lines.
    pub excluded_groups: Vec<String>,
    /// `-package` lines.
    pub excluded: Vec<String>,
    /// The header options (`--nocore`, `--exclude-weakdeps`, `--inst-langs=...`), unquoted.
    pub options: Vec<String>,
}

/// A script section.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Script {
    /// Which (`pre`, `pre-install`, `post`, `onerror`, `traceback`).
    pub kind: SectionKind,
    /// `--interpreter`, `/bin/sh` by default.
    pub interpreter: String,
    /// `--nochroot` (`%post` only).
    pub nochroot: bool,
    /// `--log` / `--logfile`.
    pub log: Option<String>,
    /// `--erroronfail`.
    pub erroronfail: bool,
    /// The body, verbatim.
    pub body: String,
    /// Where the header was.
    pub location: Location,
}

/// Any command that parsed, with its options by destination name (pykickstart's attribute).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CommandData {
    /// The command name as written.
    pub name: String,
    /// (attribute, value) in the order they were set.
    pub options: Vec<(String, Value)>,
    /// Where.
    pub location: Location,
}

/// The typed model.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Model {
    /// `part` / `partition` lines.
    pub partitions: Vec<Partition>,
    /// `clearpart`.
    pub clearpart: Option<ClearPart>,
    /// `zerombr`.
    pub zerombr: bool,
    /// `bootloader`.
    pub bootloader: Option<Bootloader>,
    /// `autopart`.
    pub autopart: Option<AutoPart>,
    /// `lang`.
    pub lang: Option<Lang>,
    /// `keyboard`.
    pub keyboard: Option<Keyboard>,
    /// `timezone`.
    pub timezone: Option<Timezone>,
    /// `network` lines.
    pub network: Vec<Network>,
    /// `rootpw`.
    pub rootpw: Option<RootPw>,
    /// `user` lines.
    pub users: Vec<User>,
    /// `services`.
    pub services: Option<Services>,
    /// `selinux`: `enforcing`, `permissive` or `disabled`.
    pub selinux: Option<String>,
    /// `firewall`.
    pub firewall: Option<Firewall>,
    /// `url`.
    pub url: Option<Url>,
    /// `repo` lines.
    pub repos: Vec<Repo>,
    /// `%packages`, when any section was present.
    pub packages: Option<Packages>,
    /// Scripts in order.
    pub scripts: Vec<Script>,
    /// Every command that parsed, typed above or not, in order.
    pub commands: Vec<CommandData>,
}

fn add_packages(p: &mut Packages, line: &str) {
    let line = line.split('#').next().unwrap_or("").trim();
    if let Some(env) = line.strip_prefix("@^") {
        p.environment = Some(env.trim().to_string());
    } else if let Some(g) = line.strip_prefix('@') {
        let mut words = Vec::new();
        let mut group = Group::default();
        for w in g.split_whitespace() {
            if w.len() > 2 && "--nodefaults".starts_with(w) {
                group.nodefaults = true;
            } else if w.len() > 2 && "--optional".starts_with(w) {
                group.optional = true;
            } else {
                words.push(w);
            }
        }
        group.name = words.join(" ");
        if !p.groups.iter().any(|x| x.name == group.name) {
            p.groups.push(group);
        }
    } else if let Some(x) = line.strip_prefix('-') {
        if let Some(env) = x.strip_prefix("@^") {
            if p.environment.as_deref() == Some(env) {
                p.environment = None;
            }
        } else if let Some(g) = x.strip_prefix('@') {
            p.groups.retain(|x| x.name != g);
            if !p.excluded_groups.iter().any(|x| x == g) {
                p.excluded_groups.push(g.to_string());
            }
        } else {
            p.packages.retain(|y| y != x);
            if !p.excluded.iter().any(|y| y == x) {
                p.excluded.push(x.to_string());
            }
        }
    } else if !line.is_empty() {
        p.excluded.retain(|y| y != line);
        if !p.packages.iter().any(|y| y == line) {
            p.packages.push(line.to_string());
        }
    }
}

impl Kickstart {
    /// The typed model for `version`: every command that parses cleanly contributes (a
    /// later single-use command replaces an earlier one, as in pykickstart); invalid lines
    /// are left out, so check [`Kickstart::validate`] first.
    pub fn model(&self, version: Version) -> Model {
        let mut m = Model::default();
        let mut session = Session::default();
        let mut sink = Vec::new();
        for item in &self.items {
            match item {
                Item::Command(c) => {
                    sink.clear();
                    let Some(p) = check_command(version, &mut session, c, &mut sink) else {
                        continue;
                    };
                    let ns = &p.ns;
                    m.commands.push(CommandData {
                        name: c.name.clone(),
                        options: ns
                            .values
                            .iter()
                            .filter(|(d, _)| !d.starts_with('\0'))
                            .map(|(d, v)| ((*d).to_string(), v.clone()))
                            .collect(),
                        location: c.location.clone(),
                    });
                    apply(&mut m, &c.name, ns, &c.location);
                }
                Item::Section(sec) => section(&mut m, sec),
            }
        }
        m
    }
}

fn section(m: &mut Model, sec: &crate::document::Section) {
    let flag = |names: &[&str]| sec.args.iter().any(|a| names.contains(&a.as_str()));
    let opt = |names: &[&str]| {
        let mut out = None;
        let mut it = sec.args.iter();
        while let Some(a) = it.next() {
            for n in names {
                if a == n {
                    out = it.next().cloned();
                } else if let Some(v) = a.strip_prefix(n).and_then(|r| r.strip_prefix('=')) {
                    out = Some(v.to_string());
                }
            }
        }
        out
    };
    match sec.kind {
        SectionKind::Packages => {
            let p = m.packages.get_or_insert_with(Packages::default);
            p.options.extend(sec.args.iter().cloned());
            for line in &sec.body {
                add_packages(p, line);
            }
        }
        k if k.is_script() => m.scripts.push(Script {
            kind: k,
            interpreter: opt(&["--interpreter"]).unwrap_or_else(|| "/bin/sh".to_string()),
            nochroot: k == SectionKind::Post && flag(&["--nochroot"]),
            log: opt(&["--log", "--logfile"]),
            erroronfail: flag(&["--erroronfail"]),
            body: sec.body.iter().map(|l| format!("{l}\n")).collect(),
            location: sec.location.clone(),
        }),
        _ => {}
    }
}

fn apply(m: &mut Model, name: &str, ns: &Namespace, loc: &Location) {
    match name {
        "part" | "partition" => m.partitions.push(Partition {
            mountpoint: s(ns, "mntpoint").unwrap_or_default(),
            size: i(ns, "size"),
            max_size: i(ns, "maxSizeMB"),
            grow: b(ns, "grow"),
            fstype: s(ns, "fstype"),
            label: s(ns, "label"),
            disk: s(ns, "disk"),
            onpart: s(ns, "onPart"),
            primary: b(ns, "primOnly"),
            format: !matches!(ns.get("format"), Some(Value::Bool(false))),
            fsoptions: s(ns, "fsopts"),
            mkfsoptions: s(ns, "mkfsopts"),
            encryption: Encryption::from(ns),
            location: loc.clone(),
        }),
        "clearpart" => {
            let kind = match s(ns, "type").as_deref() {
                Some("0") => Some("linux"),
                Some("1") => Some("all"),
                Some("2") => Some("none"),
                _ if b(ns, "devices") => Some("list"),
                _ => None,
            };
            m.clearpart = Some(ClearPart {
                kind: kind.map(str::to_string),
                drives: l(ns, "drives"),
                devices: l(ns, "devices"),
                initlabel: b(ns, "initAll"),
                disklabel: s(ns, "disklabel"),
            });
        }
        "zerombr" => m.zerombr = true,
        "bootloader" => {
            m.bootloader = Some(Bootloader {
                location: s(ns, "location"),
                append: s(ns, "appendLine"),
                timeout: i(ns, "timeout"),
                boot_drive: s(ns, "bootDrive"),
                driveorder: l(ns, "driveorder"),
                password: s(ns, "password").or_else(|| s(ns, "_md5pass")),
                iscrypted: b(ns, "isCrypted") || b(ns, "_md5pass"),
                disabled: b(ns, "disabled"),
                sdboot: b(ns, "sdboot"),
                extlinux: b(ns, "extlinux"),
            });
        }
        "autopart" => {
            m.autopart = Some(AutoPart {
                kind: s(ns, "type").map(|t| if t == "0" { "plain".to_string() } else { t }),
                fstype: s(ns, "fstype"),
                nohome: b(ns, "nohome"),
                noboot: b(ns, "noboot"),
                noswap: b(ns, "noswap"),
                encryption: Encryption::from(ns),
            });
        }
        "lang" => {
            m.lang = Some(Lang {
                lang: s(ns, "lang").unwrap_or_default(),
                addsupport: l(ns, "addsupport"),
            });
        }
        "keyboard" => {
            m.keyboard = Some(Keyboard {
                keyboard: s(ns, "kbd"),
                vckeymap: s(ns, "vc_keymap"),
                xlayouts: l(ns, "x_layouts"),
                switch: l(ns, "switch_options"),
            });
        }
        "timezone" => {
            m.timezone = Some(Timezone {
                timezone: s(ns, "timezone"),
                utc: b(ns, "isUtc"),
                nontp: b(ns, "nontp"),
                ntpservers: l(ns, "ntpservers"),
            });
        }
        "network" => m.network.push(Network {
            device: s(ns, "device"),
            bootproto: s(ns, "bootProto"),
            ip: s(ns, "ip"),
            netmask: s(ns, "netmask"),
            gateway: s(ns, "gateway"),
            nameserver: s(ns, "nameserver"),
            hostname: s(ns, "hostname"),
            onboot: match ns.get("onboot") {
                Some(Value::Bool(v)) => Some(*v),
                _ => None,
            },
            activate: match ns.get("activate") {
                Some(Value::Bool(v)) => Some(*v),
                _ => None,
            },
            noipv6: b(ns, "noipv6"),
        }),
        "rootpw" => {
            m.rootpw = Some(RootPw {
                password: s(ns, "password"),
                iscrypted: b(ns, "isCrypted"),
                lock: b(ns, "lock"),
                allow_ssh: b(ns, "allow_ssh"),
            });
        }
        "user" => m.users.push(User {
            name: s(ns, "name").unwrap_or_default(),
            groups: l(ns, "groups"),
            homedir: s(ns, "homedir"),
            shell: s(ns, "shell"),
            uid: i(ns, "uid"),
            gid: i(ns, "gid"),
            gecos: s(ns, "gecos"),
            password: s(ns, "password"),
            iscrypted: b(ns, "isCrypted"),
            lock: b(ns, "lock"),
        }),
        "services" => {
            m.services = Some(Services {
                enabled: l(ns, "enabled"),
                disabled: l(ns, "disabled"),
            });
        }
        "selinux" => {
            m.selinux = match s(ns, "selinux").as_deref() {
                Some("0") => Some("disabled".to_string()),
                Some("1") => Some("enforcing".to_string()),
                Some("2") => Some("permissive".to_string()),
                _ => None,
            };
        }
        "firewall" => {
            m.firewall = Some(Firewall {
                enabled: !matches!(ns.get("enabled"), Some(Value::Bool(false))),
                ports: l(ns, "ports"),
                services: l(ns, "services"),
                remove_services: l(ns, "remove_services"),
                trusts: l(ns, "trusts"),
                use_system_defaults: b(ns, "use_system_defaults"),
            });
        }
        "url" => {
            m.url = Some(Url {
                url: s(ns, "url"),
                mirrorlist: s(ns, "mirrorlist"),
                metalink: s(ns, "metalink"),
                proxy: s(ns, "proxy"),
                noverifyssl: b(ns, "noverifyssl"),
            });
        }
        "repo" => m.repos.push(Repo {
            name: s(ns, "name").unwrap_or_default(),
            baseurl: s(ns, "baseurl"),
            mirrorlist: s(ns, "mirrorlist"),
            metalink: s(ns, "metalink"),
            cost: i(ns, "cost"),
            install: b(ns, "install"),
            excludepkgs: l(ns, "excludepkgs"),
            includepkgs: l(ns, "includepkgs"),
        }),
        _ => {}
    }
}
