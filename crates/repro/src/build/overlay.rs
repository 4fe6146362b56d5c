//! The kickstart applied to a root tree as an overlay: the tree on disk is never touched;
//! the files the settings live in are replaced in the in-memory [`Tree`] the root image is
//! written from. Every command is either applied here (and said so) or listed as not applied.

use std::collections::BTreeSet;
use std::io::Read;
use std::sync::Arc;

use imgpipe_fstree::{Content, Entry, FileType, Metadata, Tree};
use imgpipe_kickstart::{Item, Kickstart, Model, Version};
use serde::Serialize;

use super::crypt::{salt_from_bytes, sha512_crypt};
use crate::error::{Error, Result};
use crate::seed::{Purpose, Seed};

/// The largest configuration file the overlay reads from the tree (`/etc/passwd`, a unit).
const MAX_CONFIG: u64 = 16 << 20;

/// One kickstart command or section and what the build did with it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Applied {
    /// The command or section (`network`, `%packages`).
    pub command: String,
    /// Where it was written (`ks.cfg:12`).
    pub location: String,
    /// What was done, or why not.
    pub detail: String,
}

/// What the overlay did: the commands applied and those left to whatever built the tree.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct KickstartReport {
    /// Commands whose settings are now in the image.
    pub applied: Vec<Applied>,
    /// Commands and sections the build does not apply.
    pub not_applied: Vec<Applied>,
}

/// Commands `build` applies (others are listed as not applied).
const APPLIED: &[&str] = &[
    "bootloader",
    "lang",
    "keyboard",
    "timezone",
    "network",
    "rootpw",
    "user",
    "group",
    "services",
    "selinux",
];

fn io_err(what: String) -> impl FnOnce(std::io::Error) -> Error {
    move |e| Error::Step {
        step: what,
        message: e.to_string(),
    }
}

fn tree_err(what: String) -> impl FnOnce(imgpipe_fstree::Error) -> Error {
    move |e| Error::Step {
        step: what,
        message: e.to_string(),
    }
}

/// Edits a tree: reads and replaces files, all new entries at the epoch.
struct Overlay<'t> {
    tree: &'t mut Tree,
    epoch: i64,
}

impl Overlay<'_> {
    /// A file's text (`None` when absent); a symlink or directory there is an error.
    fn read(&self, path: &str) -> Result<Option<String>> {
        let Some(node) = self.tree.get(path.as_bytes()) else {
            return Ok(None);
        };
        if node.entry.file_type != FileType::File {
            return Err(Error::Step {
                step: format!("applying the kickstart to /{path}"),
                message: format!("it is a {}, not a file", node.entry.file_type.name()),
            });
        }
        let mut text = String::new();
        node.content
            .open()
            .and_then(|r| r.take(MAX_CONFIG).read_to_string(&mut text))
            .map_err(io_err(format!("reading /{path} in the root tree")))?;
        Ok(Some(text))
    }

    /// Writes a file: an existing one keeps its mode, owner and xattrs; a new one gets `mode`,
    /// owned by root, and missing parents are made 0755.
    fn write(&mut self, path: &str, text: &str, mode: u32) -> Result<()> {
        let data: Arc<[u8]> = Arc::from(text.as_bytes());
        let epoch = self.epoch;
        if let Some(node) = self.tree.get_mut(path.as_bytes())
            && node.entry.file_type == FileType::File
        {
            node.entry.meta.mtime = epoch;
            node.entry.meta.mtime_nsec = 0;
            node.entry.size = data.len() as u64;
            // A hard-linked file becomes its own file: the other names keep their bytes.
            node.entry.link = None;
            node.content = Content::Bytes(data);
            return Ok(());
        }
        self.remove(path);
        let mut e = Entry::new(path, FileType::File, Metadata::new(mode, epoch));
        e.size = data.len() as u64;
        self.tree
            .insert_with_parents(e, Content::Bytes(data), &Metadata::new(0o755, epoch))
            .map_err(tree_err(format!("adding /{path}")))
    }

    fn symlink(&mut self, path: &str, target: &str) -> Result<()> {
        self.remove(path);
        let mut e = Entry::new(path, FileType::Symlink, Metadata::new(0o777, self.epoch));
        e.size = target.len() as u64;
        e.target = Some(target.as_bytes().to_vec());
        self.tree
            .insert_with_parents(e, Content::None, &Metadata::new(0o755, self.epoch))
            .map_err(tree_err(format!("adding /{path}")))
    }

    fn dir(&mut self, path: &str, mode: u32, uid: u32, gid: u32) -> Result<()> {
        if self.tree.get(path.as_bytes()).is_some() {
            return Ok(());
        }
        let mut meta = Metadata::new(mode, self.epoch);
        meta.uid = uid;
        meta.gid = gid;
        self.tree
            .insert_with_parents(
                Entry::new(path, FileType::Dir, meta),
                Content::None,
                &Metadata::new(0o755, self.epoch),
            )
            .map_err(tree_err(format!("adding /{path}")))
    }

    fn remove(&mut self, path: &str) -> usize {
        self.tree.remove(path.as_bytes())
    }

    fn is_file(&self, path: &str) -> bool {
        self.tree
            .get(path.as_bytes())
            .is_some_and(|n| n.entry.file_type == FileType::File)
    }
}

/// Replaces the line of `file` whose first `:`-field is `name`, or appends `line`.
fn upsert_line(text: &str, name: &str, line: &str) -> String {
    let mut out = String::with_capacity(text.len() + line.len() + 1);
    let mut found = false;
    for l in text.lines() {
        if l.split(':').next() == Some(name) && !found {
            out.push_str(line);
            found = true;
        } else {
            out.push_str(l);
        }
        out.push('\n');
    }
    if !found {
        out.push_str(line);
        out.push('\n');
    }
    out
}

/// The `:`-fields of the line of `text` named `name`.
fn fields<'a>(text: &'a str, name: &str) -> Option<Vec<&'a str>> {
    text.lines()
        .map(|l| l.split(':').collect::<Vec<_>>())
        .find(|f| f.first() == Some(&name))
}

/// A `rootpw`/`user` password as it goes into `/etc/shadow`.
fn shadow_hash(password: Option<&str>, iscrypted: bool, lock: bool, salt: &str) -> String {
    let hash = match password {
        Some(p) if iscrypted => p.to_owned(),
        Some(p) => sha512_crypt(p.as_bytes(), salt),
        None => "*".to_owned(),
    };
    if lock && !hash.starts_with('!') {
        format!("!{hash}")
    } else {
        hash
    }
}

/// Applies what `build` applies of `ks` to `tree`; returns what was and was not applied.
pub(crate) fn apply(
    ks: &Kickstart,
    version: Version,
    tree: &mut Tree,
    epoch: i64,
    seed: Seed,
    disk: bool,
) -> Result<KickstartReport> {
    let model = ks.model(version);
    let mut report = KickstartReport::default();
    let mut o = Overlay { tree, epoch };
    let days = epoch.div_euclid(86_400);
    for item in &ks.items {
        let (name, location) = match item {
            Item::Command(c) => (c.name.clone(), c.location.to_string()),
            Item::Section(s) => (s.kind.header().to_owned(), s.location.to_string()),
        };
        let is_command = matches!(item, Item::Command(_));
        let applied_here = is_command
            && (APPLIED.contains(&name.as_str())
                || (disk && matches!(name.as_str(), "part" | "partition")));
        if !applied_here {
            let detail = match item {
                Item::Section(s) if s.kind.is_script() => {
                    "scripts belong to whatever built the tree"
                }
                Item::Section(_) if name == "%packages" => {
                    "packages belong to whatever built the tree"
                }
                Item::Section(_) => "sections are not applied by build",
                Item::Command(_) if matches!(name.as_str(), "part" | "partition") => {
                    "partitions are used only with --disk"
                }
                Item::Command(_) => "not applied by build",
            };
            report.not_applied.push(Applied {
                command: name,
                location,
                detail: detail.to_owned(),
            });
        }
    }
    let mut applied = |command: &str, detail: String| {
        let location = ks
            .items
            .iter()
            .find_map(|i| match i {
                Item::Command(c) if c.name == command => Some(c.location.to_string()),
                _ => None,
            })
            .unwrap_or_default();
        report.applied.push(Applied {
            command: command.to_owned(),
            location,
            detail,
        });
    };

    apply_model(&model, &mut o, seed, days, &mut applied)?;
    Ok(report)
}

fn apply_model(
    m: &Model,
    o: &mut Overlay<'_>,
    seed: Seed,
    days: i64,
    applied: &mut dyn FnMut(&str, String),
) -> Result<()> {
    if let Some(b) = &m.bootloader {
        let mut d = Vec::new();
        if let Some(a) = &b.append {
            d.push(format!("kernel arguments {a:?}"));
        }
        if let Some(t) = b.timeout {
            d.push(format!("menu timeout {t} s"));
        }
        if b.password.is_some() {
            d.push("--password not applied (the boot menu has no password)".into());
        }
        applied("bootloader", d.join("; "));
    }
    if let Some(l) = &m.lang {
        o.write("etc/locale.conf", &format!("LANG={}\n", l.lang), 0o644)?;
        applied("lang", format!("/etc/locale.conf LANG={}", l.lang));
    }
    if let Some(k) = &m.keyboard {
        let mut d = Vec::new();
        if let Some(map) = k.vckeymap.as_ref().or(k.keyboard.as_ref()) {
            o.write("etc/vconsole.conf", &format!("KEYMAP={map}\n"), 0o644)?;
            d.push(format!("/etc/vconsole.conf KEYMAP={map}"));
        }
        if !k.xlayouts.is_empty() {
            let layouts: Vec<&str> = k
                .xlayouts
                .iter()
                .map(|l| l.split_whitespace().next().unwrap_or(""))
                .collect();
            let text = format!(
                "Section \"InputClass\"\n        Identifier \"system-keyboard\"\n        MatchIsKeyboard \"on\"\n        Option \"XkbLayout\" \"{}\"\nEndSection\n",
                layouts.join(",")
            );
            o.write("etc/X11/xorg.conf.d/00-keyboard.conf", &text, 0o644)?;
            d.push(format!("X11 layouts {}", layouts.join(",")));
        }
        applied("keyboard", d.join("; "));
    }
    if let Some(t) = &m.timezone
        && let Some(zone) = &t.timezone
    {
        if zone.contains("..") || zone.starts_with('/') {
            return Err(Error::Step {
                step: "timezone".into(),
                message: format!("{zone:?} is not a zone name"),
            });
        }
        let zonefile = format!("usr/share/zoneinfo/{zone}");
        let mut d = format!("/etc/localtime -> ../{zonefile}");
        if !o.is_file(&zonefile) && !matches!(zone.as_str(), "UTC" | "Etc/UTC") {
            return Err(Error::Step {
                step: format!("timezone {zone}"),
                message: format!("the tree has no /{zonefile} (is tzdata installed?)"),
            });
        }
        o.symlink("etc/localtime", &format!("../{zonefile}"))?;
        o.write("etc/timezone", &format!("{zone}\n"), 0o644)?;
        if t.utc {
            o.write("etc/adjtime", "0.0 0 0.0\n0\nUTC\n", 0o644)?;
            d.push_str("; hardware clock in UTC");
        }
        if t.nontp || !t.ntpservers.is_empty() {
            d.push_str("; NTP settings not applied");
        }
        applied("timezone", d);
    }
    if let Some(h) = m.network.iter().find_map(|n| n.hostname.as_ref()) {
        o.write("etc/hostname", &format!("{h}\n"), 0o644)?;
        applied(
            "network",
            format!(
                "/etc/hostname {h}; interface settings not applied (NetworkManager configures at boot)"
            ),
        );
    }
    if let Some(s) = &m.selinux {
        let old = o
            .read("etc/selinux/config")?
            .unwrap_or_else(|| "SELINUXTYPE=targeted\n".into());
        let mut text = String::new();
        let mut set = false;
        for l in old.lines() {
            if l.trim_start().starts_with("SELINUX=") {
                if !set {
                    text.push_str(&format!("SELINUX={s}\n"));
                }
                set = true;
            } else {
                text.push_str(l);
                text.push('\n');
            }
        }
        if !set {
            text.insert_str(0, &format!("SELINUX={s}\n"));
        }
        o.write("etc/selinux/config", &text, 0o644)?;
        applied("selinux", format!("/etc/selinux/config SELINUX={s}"));
    }
    // Groups first: users may name them.
    for c in m.commands.iter().filter(|c| c.name == "group") {
        let opt = |k: &str| {
            c.options
                .iter()
                .find(|(n, _)| n == k)
                .map(|(_, v)| v.to_string())
        };
        let Some(name) = opt("name") else { continue };
        let gid = match opt("gid").and_then(|g| g.parse::<u32>().ok()) {
            Some(g) => g,
            None => next_id(&o.read("etc/group")?.unwrap_or_default(), 1000),
        };
        add_group(o, &name, gid, &[])?;
        applied("group", format!("{name} (gid {gid})"));
    }
    if let Some(r) = &m.rootpw {
        let salt = salt_from_bytes(&seed.bytes32(&Purpose::Other {
            label: "rootpw-salt",
            index: 0,
        }));
        let hash = shadow_hash(r.password.as_deref(), r.iscrypted, r.lock, &salt);
        let passwd = o.read("etc/passwd")?.unwrap_or_default();
        if fields(&passwd, "root").is_none() {
            o.write(
                "etc/passwd",
                &upsert_line(&passwd, "root", "root:x:0:0:root:/root:/bin/bash"),
                0o644,
            )?;
        }
        let shadow = o.read("etc/shadow")?.unwrap_or_default();
        let line = match fields(&shadow, "root") {
            Some(mut f) if f.len() >= 3 => {
                let d = days.to_string();
                f[1] = &hash;
                f[2] = &d;
                f.join(":")
            }
            _ => format!("root:{hash}:{days}:0:99999:7:::"),
        };
        o.write("etc/shadow", &upsert_line(&shadow, "root", &line), 0o000)?;
        let how = match (&r.password, r.iscrypted, r.lock) {
            (_, _, true) => "locked",
            (Some(_), true, _) => "crypted hash as given",
            (Some(_), false, _) => "SHA-512 crypt, salt from the seed",
            (None, _, _) => "no password",
        };
        applied("rootpw", format!("/etc/shadow root: {how}"));
    }
    for (n, u) in m.users.iter().enumerate() {
        add_user(o, u, seed, n as u64, days)?;
        applied(
            "user",
            format!("{} ({})", u.name, "passwd, shadow, group, home"),
        );
    }
    if let Some(s) = &m.services {
        let mut d = Vec::new();
        for name in &s.enabled {
            d.push(format!("enabled {}", enable(o, name)?));
        }
        for name in &s.disabled {
            d.push(format!("disabled {}", disable(o, name)?));
        }
        applied("services", d.join("; "));
    }
    Ok(())
}

/// The lowest id at least `from` not used in the third field of `text` (passwd or group).
fn next_id(text: &str, from: u32) -> u32 {
    let used: BTreeSet<u32> = text
        .lines()
        .filter_map(|l| l.split(':').nth(2)?.parse().ok())
        .collect();
    let mut id = from;
    while used.contains(&id) {
        id += 1;
    }
    id
}

fn add_group(o: &mut Overlay<'_>, name: &str, gid: u32, members: &[&str]) -> Result<()> {
    check_name("group", name)?;
    let group = o.read("etc/group")?.unwrap_or_default();
    if fields(&group, name).is_none() {
        let line = format!("{name}:x:{gid}:{}", members.join(","));
        o.write("etc/group", &upsert_line(&group, name, &line), 0o644)?;
        if let Some(gshadow) = o.read("etc/gshadow")? {
            let line = format!("{name}:!::{}", members.join(","));
            o.write("etc/gshadow", &upsert_line(&gshadow, name, &line), 0o000)?;
        }
    }
    Ok(())
}

/// Adds `user` to the supplementary group `group` (which must exist).
fn add_member(o: &mut Overlay<'_>, group: &str, user: &str) -> Result<()> {
    for file in ["etc/group", "etc/gshadow"] {
        let Some(text) = o.read(file)? else { continue };
        let Some(mut f) = fields(&text, group) else {
            if file == "etc/group" {
                return Err(Error::Step {
                    step: format!("user {user} --groups={group}"),
                    message: format!("the tree has no group {group}"),
                });
            }
            continue;
        };
        let last = f.len().saturating_sub(1);
        let mut members: Vec<&str> = f
            .get(last)
            .map(|m| m.split(',').filter(|m| !m.is_empty()).collect())
            .unwrap_or_default();
        if members.contains(&user) {
            continue;
        }
        members.push(user);
        let joined = members.join(",");
        if let Some(slot) = f.get_mut(last) {
            *slot = &joined;
        }
        let line = f.join(":");
        o.write(
            file,
            &upsert_line(&text, group, &line),
            if file == "etc/group" { 0o644 } else { 0o000 },
        )?;
    }
    Ok(())
}

fn check_name(what: &str, name: &str) -> Result<()> {
    let ok = !name.is_empty()
        && name.len() <= 32
        && !name.starts_with('-')
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-$".contains(&b));
    if ok {
        Ok(())
    } else {
        Err(Error::Step {
            step: format!("{what} {name:?}"),
            message: "not a valid user or group name".into(),
        })
    }
}

fn add_user(
    o: &mut Overlay<'_>,
    u: &imgpipe_kickstart::User,
    seed: Seed,
    index: u64,
    days: i64,
) -> Result<()> {
    check_name("user", &u.name)?;
    let passwd = o.read("etc/passwd")?.unwrap_or_default();
    if fields(&passwd, &u.name).is_some() {
        return Err(Error::Step {
            step: format!("user {}", u.name),
            message: "the tree already has this user".into(),
        });
    }
    let uid = match u.uid {
        Some(id) => u32::try_from(id).map_err(|_| Error::Step {
            step: format!("user {} --uid", u.name),
            message: "out of range".into(),
        })?,
        None => next_id(&passwd, 1000),
    };
    let group = o.read("etc/group")?.unwrap_or_default();
    let gid = match u.gid {
        Some(id) => u32::try_from(id).map_err(|_| Error::Step {
            step: format!("user {} --gid", u.name),
            message: "out of range".into(),
        })?,
        None => {
            // A user private group, with the uid's number when it is free.
            let gid = if next_id(&group, uid) == uid {
                uid
            } else {
                next_id(&group, 1000)
            };
            add_group(o, &u.name, gid, &[])?;
            gid
        }
    };
    let home = u
        .homedir
        .clone()
        .unwrap_or_else(|| format!("/home/{}", u.name));
    let shell = u.shell.clone().unwrap_or_else(|| "/bin/bash".into());
    let gecos = u.gecos.clone().unwrap_or_default().replace(':', " ");
    let line = format!("{}:x:{uid}:{gid}:{gecos}:{home}:{shell}", u.name);
    o.write("etc/passwd", &upsert_line(&passwd, &u.name, &line), 0o644)?;
    let salt = salt_from_bytes(&seed.bytes32(&Purpose::Other {
        label: "user-salt",
        index,
    }));
    let hash = match &u.password {
        None if !u.lock => "!!".to_owned(),
        p => shadow_hash(p.as_deref(), u.iscrypted, u.lock, &salt),
    };
    let shadow = o.read("etc/shadow")?.unwrap_or_default();
    let line = format!("{}:{hash}:{days}:0:99999:7:::", u.name);
    o.write("etc/shadow", &upsert_line(&shadow, &u.name, &line), 0o000)?;
    for g in &u.groups {
        for g in g.split(',').map(str::trim).filter(|g| !g.is_empty()) {
            add_member(o, g, &u.name)?;
        }
    }
    let home = home.trim_start_matches('/');
    if !home.is_empty() {
        o.dir(home, 0o700, uid, gid)?;
    }
    Ok(())
}

/// The unit directories, in systemd's order of precedence.
const UNIT_DIRS: &[&str] = &[
    "etc/systemd/system",
    "usr/lib/systemd/system",
    "lib/systemd/system",
];

fn unit_name(name: &str) -> String {
    if name.contains('.') {
        name.to_owned()
    } else {
        format!("{name}.service")
    }
}

/// Finds a unit file; returns its directory and text.
fn find_unit(o: &Overlay<'_>, unit: &str) -> Result<Option<(&'static str, String)>> {
    for dir in UNIT_DIRS {
        let path = format!("{dir}/{unit}");
        if o.is_file(&path) {
            return Ok(o.read(&path)?.map(|t| (*dir, t)));
        }
    }
    Ok(None)
}

/// The `[Install]` keys of a unit: (key, value) pairs.
fn install_section(text: &str) -> Vec<(String, String)> {
    let mut inside = false;
    let mut out = Vec::new();
    for l in text.lines() {
        let l = l.trim();
        if l.starts_with('[') {
            inside = l == "[Install]";
            continue;
        }
        if !inside || l.starts_with('#') || l.starts_with(';') {
            continue;
        }
        if let Some((k, v)) = l.split_once('=') {
            for v in v.split_whitespace() {
                out.push((k.trim().to_owned(), v.to_owned()));
            }
        }
    }
    out
}

/// `systemctl enable` as an overlay: the symlinks `[Install]` asks for (`WantedBy=`,
/// `RequiredBy=`, `Alias=`, and `Also=` units in turn).
fn enable(o: &mut Overlay<'_>, name: &str) -> Result<String> {
    let mut todo = vec![unit_name(name)];
    let mut done = BTreeSet::new();
    let mut links = Vec::new();
    while let Some(unit) = todo.pop() {
        if !done.insert(unit.clone()) || done.len() > 64 {
            continue;
        }
        if unit.contains('/') || unit.starts_with('.') {
            return Err(Error::Step {
                step: format!("services --enabled={name}"),
                message: format!("{unit:?} is not a unit name"),
            });
        }
        let Some((dir, text)) = find_unit(o, &unit)? else {
            return Err(Error::Step {
                step: format!("services --enabled={name}"),
                message: format!(
                    "the tree has no unit {unit} (looked in /{})",
                    UNIT_DIRS.join(", /")
                ),
            });
        };
        let target = format!("/{dir}/{unit}");
        for (k, v) in install_section(&text) {
            let link = match k.as_str() {
                "WantedBy" => format!("etc/systemd/system/{v}.wants/{unit}"),
                "RequiredBy" => format!("etc/systemd/system/{v}.requires/{unit}"),
                "Alias" => format!("etc/systemd/system/{v}"),
                "Also" => {
                    todo.push(v);
                    continue;
                }
                _ => continue,
            };
            if v.contains('/') || v.starts_with('.') {
                continue;
            }
            if dir == "etc/systemd/system" && link == format!("etc/systemd/system/{unit}") {
                continue;
            }
            o.symlink(&link, &target)?;
            links.push(link);
        }
    }
    Ok(if links.is_empty() {
        format!(
            "{} (no [Install] section: nothing to link)",
            unit_name(name)
        )
    } else {
        format!("{} ({} links)", unit_name(name), links.len())
    })
}

/// `systemctl disable` as an overlay: every link to the unit under `/etc/systemd/system`.
fn disable(o: &mut Overlay<'_>, name: &str) -> Result<String> {
    let unit = unit_name(name);
    let doomed: Vec<String> = o
        .tree
        .iter()
        .filter(|n| {
            n.entry.file_type == FileType::Symlink
                && n.entry.path.starts_with(b"etc/systemd/system/")
                && (n.entry.name() == unit.as_bytes()
                    || n.entry
                        .target
                        .as_deref()
                        .is_some_and(|t| t.ends_with(format!("/{unit}").as_bytes())))
        })
        .map(|n| String::from_utf8_lossy(&n.entry.path).into_owned())
        .collect();
    for p in &doomed {
        o.remove(p);
    }
    Ok(format!("{unit} ({} links removed)", doomed.len()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tree(files: &[(&str, &str)]) -> Tree {
        let mut t = Tree::new(Metadata::new(0o755, 0));
        for (p, text) in files {
            let mut e = Entry::new(*p, FileType::File, Metadata::new(0o644, 5));
            e.size = text.len() as u64;
            t.insert_with_parents(
                e,
                Content::Bytes(Arc::from(text.as_bytes())),
                &Metadata::new(0o755, 5),
            )
            .unwrap();
        }
        t
    }

    fn text(t: &Tree, p: &str) -> String {
        let mut s = String::new();
        t.get(p.as_bytes())
            .unwrap()
            .content
            .open()
            .unwrap()
            .read_to_string(&mut s)
            .unwrap();
        s
    }

    #[test]
    fn applies_and_lists() {
        let mut t = tree(&[
            (
                "etc/passwd",
                "root:x:0:0:root:/root:/bin/bash\nbin:x:1:1::/:/sbin/nologin\n",
            ),
            ("etc/shadow", "root:*:19000:0:99999:7:::\n"),
            ("etc/group", "root:x:0:\nwheel:x:10:\n"),
            ("usr/share/zoneinfo/Europe/Prague", "TZif"),
            (
                "usr/lib/systemd/system/sshd.service",
                "[Unit]\n[Install]\nWantedBy=multi-user.target\nAlias=ssh.service\n",
            ),
            (
                "etc/systemd/system/multi-user.target.wants/cups.service",
                "x",
            ),
        ]);
        let ks = Kickstart::parse_str(
            "ks.cfg",
            "lang cs_CZ.UTF-8\nkeyboard --vckeymap=cz --xlayouts=cz,us\ntimezone Europe/Prague --utc\n\
             network --hostname=kiosk\nrootpw --plaintext secret\nuser --name=alice --groups=wheel --password=pw --plaintext\n\
             services --enabled=sshd\nselinux --permissive\nfirewall --enabled\nbootloader --append=\"quiet\" --timeout=1\n\
             %packages\n@core\n%end\n%post\necho hi\n%end\n",
        );
        assert!(ks.validate(Version::F43).is_valid());
        let seed = Seed::from_material(b"t");
        let rep = apply(&ks, Version::F43, &mut t, 1_700_000_000, seed, false).unwrap();
        assert_eq!(text(&t, "etc/hostname"), "kiosk\n");
        assert_eq!(text(&t, "etc/locale.conf"), "LANG=cs_CZ.UTF-8\n");
        assert_eq!(text(&t, "etc/vconsole.conf"), "KEYMAP=cz\n");
        assert_eq!(
            t.get(b"etc/localtime").unwrap().entry.target.as_deref(),
            Some(&b"../usr/share/zoneinfo/Europe/Prague"[..])
        );
        assert!(text(&t, "etc/selinux/config").starts_with("SELINUX=permissive\n"));
        let shadow = text(&t, "etc/shadow");
        let root = shadow.lines().next().unwrap();
        let salt = salt_from_bytes(&seed.bytes32(&Purpose::Other {
            label: "rootpw-salt",
            index: 0,
        }));
        assert_eq!(
            root,
            format!("root:{}:19675:0:99999:7:::", sha512_crypt(b"secret", &salt))
        );
        assert!(text(&t, "etc/passwd").contains("alice:x:1000:1000::/home/alice:/bin/bash\n"));
        assert!(text(&t, "etc/group").contains("wheel:x:10:alice\n"));
        assert!(text(&t, "etc/group").contains("alice:x:1000:\n"));
        assert_eq!(t.get(b"home/alice").unwrap().entry.meta.mode, 0o700);
        let link = t
            .get(b"etc/systemd/system/multi-user.target.wants/sshd.service")
            .unwrap();
        assert_eq!(
            link.entry.target.as_deref(),
            Some(&b"/usr/lib/systemd/system/sshd.service"[..])
        );
        assert!(t.get(b"etc/systemd/system/ssh.service").is_some());
        let names: Vec<&str> = rep.not_applied.iter().map(|a| a.command.as_str()).collect();
        assert_eq!(names, ["firewall", "%packages", "%post"]);
        assert_eq!(rep.applied.len(), 9);
        // Disabling removes the links.
        let ks = Kickstart::parse_str("ks.cfg", "services --disabled=sshd\n");
        apply(&ks, Version::F43, &mut t, 1_700_000_000, seed, false).unwrap();
        assert!(
            t.get(b"etc/systemd/system/multi-user.target.wants/sshd.service")
                .is_none()
        );
        assert!(t.get(b"etc/systemd/system/ssh.service").is_none());
        // A regular file where a link would be is not the build's to remove.
        assert!(
            t.get(b"etc/systemd/system/multi-user.target.wants/cups.service")
                .is_some()
        );
    }

    #[test]
    fn missing_things_are_errors() {
        let mut t = tree(&[("etc/passwd", "root:x:0:0::/root:/bin/sh\n")]);
        let seed = Seed::from_material(b"t");
        for (ks, needle) in [
            ("services --enabled=nope\n", "no unit nope.service"),
            ("timezone Mars/Base\n", "no /usr/share/zoneinfo/Mars/Base"),
            ("user --name=root\n", "already has this user"),
        ] {
            let ks = Kickstart::parse_str("ks.cfg", ks);
            let e = apply(&ks, Version::F43, &mut t, 0, seed, false)
                .unwrap_err()
                .to_string();
            assert!(e.contains(needle), "{e}");
        }
    }
}
