//! The LUKS2 JSON metadata area (LUKS2 on-disk format, section 3): keyslots, tokens,
//! segments, digests and config, parsed into typed structs and validated the way cryptsetup
//! validates them (`LUKS2_hdr_validate`), with caps on top.
//!
//! Unknown fields are kept in each object's `extra` map and written back on rewrite. The
//! writer emits compact JSON with every object's keys sorted, so output does not depend on
//! any map's iteration order.

use std::collections::BTreeMap;

use serde::Serialize;
use serde_json::{Map, Value};

use super::base64;
use super::binary_header::BINARY_HEADER_SIZE;
use crate::crypto::{Argon2Variant, HashAlg, Kdf};
use crate::error::{Error, Result};

/// Most keyslots (and tokens) LUKS2 addresses (`LUKS2_KEYSLOTS_MAX`).
pub(crate) const KEYSLOTS_MAX: u32 = 32;
/// The only anti-forensic stripe count cryptsetup accepts.
pub(crate) const KEYSLOT_STRIPES: u32 = 4000;
/// Largest keyslots area cryptsetup accepts (`LUKS2_MAX_KEYSLOTS_SIZE`, 128 MiB).
pub(crate) const MAX_KEYSLOTS_SIZE: u64 = 128 * 1024 * 1024;
const ALIGN: u64 = 4096;

/// Caps applied to untrusted metadata, on top of the format's own rules.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Most objects in each of `keyslots`, `tokens`, `segments`, `digests` (default 32).
    pub max_objects: usize,
    /// Most entries in any array (digest keyslots, flags, ...; default 64).
    pub max_array: usize,
    /// Most Argon2 memory a keyslot may ask for, in KiB (default 4 GiB, cryptsetup's maximum).
    pub max_argon2_memory_kib: u32,
    /// Most Argon2 work a keyslot may ask for: memory in KiB times passes (default 2^29, for
    /// instance 1 GiB x 512 passes; cryptsetup's benchmark picks about 1 GiB x 4-10). The
    /// format allows 2^32 passes, hours of work from a header nobody should trust.
    pub max_argon2_work: u64,
    /// Most PBKDF2 iterations a keyslot or digest may ask for (default 2^28: about a minute;
    /// cryptsetup's 2-second benchmark gives a few million).
    pub max_pbkdf2_iterations: u32,
    /// Most key-derivation work one unlock may do across every keyslot it tries, digests
    /// included: Argon2 memory KiB x passes plus PBKDF2 iterations (default 2^29, one
    /// keyslot at the per-keyslot cap, or about a hundred of cryptsetup's 1 GiB x 4 slots).
    /// Keyslots that would go past it are skipped, so many keyslots at the cap cannot keep
    /// an unlock busy for hours.
    pub max_unlock_work: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_objects: 32,
            max_array: 64,
            max_argon2_memory_kib: 4 * 1024 * 1024,
            max_argon2_work: 1 << 29,
            max_pbkdf2_iterations: 1 << 28,
            max_unlock_work: 1 << 29,
        }
    }
}

/// The whole JSON metadata.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Metadata {
    /// Keyslots by id.
    pub keyslots: BTreeMap<u32, Keyslot>,
    /// Tokens by id, kept as JSON objects (their content belongs to their handlers).
    pub tokens: BTreeMap<u32, Map<String, Value>>,
    /// Segments by id.
    pub segments: BTreeMap<u32, Segment>,
    /// Digests by id.
    pub digests: BTreeMap<u32, DigestEntry>,
    /// The config object.
    pub config: Config,
    /// Unknown top-level fields, preserved.
    #[serde(skip_serializing_if = "Map::is_empty")]
    pub extra: Map<String, Value>,
}

/// A `luks2` keyslot.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Keyslot {
    /// Size of the key stored in the slot (the volume key), bytes.
    pub key_size: u32,
    /// Anti-forensic splitter parameters.
    pub af: AfParams,
    /// Where the encrypted split key lives and how it is encrypted.
    pub area: KeyslotArea,
    /// How the passphrase becomes the area key.
    pub kdf: Kdf,
    /// Unknown fields of the `kdf` object, preserved.
    #[serde(skip_serializing_if = "Map::is_empty")]
    pub kdf_extra: Map<String, Value>,
    /// 0 = ignore unless asked for, 1 = normal (absent), 2 = try first.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub priority: Option<u8>,
    /// Unknown fields, preserved.
    #[serde(skip_serializing_if = "Map::is_empty")]
    pub extra: Map<String, Value>,
}

/// `af` of a keyslot (`type` is `luks1`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AfParams {
    /// Stripes (always 4000).
    pub stripes: u32,
    /// Diffusion hash.
    pub hash: HashAlg,
    /// Unknown fields, preserved.
    #[serde(skip_serializing_if = "Map::is_empty")]
    pub extra: Map<String, Value>,
}

/// `area` of a keyslot (`type` is `raw`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct KeyslotArea {
    /// Absolute byte offset of the area.
    pub offset: u64,
    /// Size of the area in bytes.
    pub size: u64,
    /// Cipher of the area, e.g. `aes-xts-plain64`.
    pub encryption: String,
    /// Key size of that cipher, bytes.
    pub key_size: u32,
    /// Unknown fields, preserved.
    #[serde(skip_serializing_if = "Map::is_empty")]
    pub extra: Map<String, Value>,
}

/// The size of a segment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum SegmentSize {
    /// `"dynamic"`: up to the end of the device.
    Dynamic,
    /// A fixed size in bytes.
    Bytes(u64),
}

/// The cipher parameters of a `crypt` segment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CryptParams {
    /// Added to the 512-byte sector number to form the IV.
    pub iv_tweak: u64,
    /// Cipher, e.g. `aes-xts-plain64`.
    pub encryption: String,
    /// Encryption sector size: 512, 1024, 2048 or 4096.
    pub sector_size: u32,
}

/// A segment.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Segment {
    /// `crypt`, `linear`, ...
    #[serde(rename = "type")]
    pub kind: String,
    /// Absolute byte offset of the segment.
    pub offset: u64,
    /// Size.
    pub size: SegmentSize,
    /// Optional flags.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub flags: Option<Vec<String>>,
    /// Cipher parameters, present for `crypt` segments.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub crypt: Option<CryptParams>,
    /// Unknown fields (e.g. `integrity`), preserved.
    #[serde(skip_serializing_if = "Map::is_empty")]
    pub extra: Map<String, Value>,
}

/// A `pbkdf2` digest of the volume key.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DigestEntry {
    /// Keyslots holding the key this digest verifies.
    pub keyslots: Vec<u32>,
    /// Segments encrypted with that key.
    pub segments: Vec<u32>,
    /// PBKDF2 hash.
    pub hash: HashAlg,
    /// PBKDF2 iterations.
    pub iterations: u32,
    /// Salt.
    #[serde(serialize_with = "super::serialize_hex")]
    pub salt: Vec<u8>,
    /// The digest.
    #[serde(serialize_with = "super::serialize_hex")]
    pub digest: Vec<u8>,
    /// Unknown fields, preserved.
    #[serde(skip_serializing_if = "Map::is_empty")]
    pub extra: Map<String, Value>,
}

/// The config object.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Config {
    /// Size of the JSON area (hdr_size - 4096).
    pub json_size: u64,
    /// Size of the keyslots area that follows the two header copies.
    pub keyslots_size: u64,
    /// Optional activation flags.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub flags: Option<Vec<String>>,
    /// The `requirements` object as stored.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub requirements: Option<Map<String, Value>>,
    /// Unknown fields, preserved.
    #[serde(skip_serializing_if = "Map::is_empty")]
    pub extra: Map<String, Value>,
}

impl Config {
    /// The `requirements.mandatory` flags.
    pub fn mandatory_requirements(&self) -> Vec<&str> {
        self.requirements
            .as_ref()
            .and_then(|r| r.get("mandatory"))
            .and_then(Value::as_array)
            .map(|a| a.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default()
    }
}

/// Whether a `requirements.mandatory` flag is one cryptsetup defines (all of them concern
/// reencryption; this crate supports none, so any flag refuses unlock and rewrite).
pub(crate) fn known_requirement(flag: &str) -> bool {
    matches!(
        flag,
        "offline-reencrypt" | "online-reencrypt" | "online-reencrypt-v2" | "online-reencrypt-v3"
    )
}

struct Ctx {
    offset: u64,
    limits: Limits,
}

impl Ctx {
    fn err(&self, path: impl Into<String>, reason: &'static str) -> Error {
        Error::Metadata {
            offset: self.offset,
            path: path.into(),
            reason,
        }
    }

    fn object<'a>(&self, v: &'a Value, path: &str) -> Result<&'a Map<String, Value>> {
        v.as_object()
            .ok_or_else(|| self.err(path, "not a JSON object"))
    }

    fn field<'a>(&self, m: &'a Map<String, Value>, path: &str, key: &str) -> Result<&'a Value> {
        m.get(key)
            .ok_or_else(|| self.err(format!("{path}.{key}"), "missing"))
    }

    fn string<'a>(&self, m: &'a Map<String, Value>, path: &str, key: &str) -> Result<&'a str> {
        self.field(m, path, key)?
            .as_str()
            .ok_or_else(|| self.err(format!("{path}.{key}"), "not a JSON string"))
    }

    fn sub<'a>(
        &self,
        m: &'a Map<String, Value>,
        path: &str,
        key: &str,
    ) -> Result<&'a Map<String, Value>> {
        let v = self.field(m, path, key)?;
        self.object(v, &format!("{path}.{key}"))
    }

    /// A uint64 stored as a decimal string (`"32768"`), as cryptsetup's `numbered()` plus
    /// `json_str_to_uint64()` accept it.
    fn u64_string(&self, m: &Map<String, Value>, path: &str, key: &str) -> Result<u64> {
        let s = self.string(m, path, key)?;
        parse_decimal(s)
            .filter(|&v| v != u64::MAX)
            .ok_or_else(|| self.err(format!("{path}.{key}"), "not a decimal uint64 string"))
    }

    fn int(&self, m: &Map<String, Value>, path: &str, key: &str) -> Result<u32> {
        let v = self.field(m, path, key)?;
        if !v.is_i64() && !v.is_u64() {
            return Err(self.err(format!("{path}.{key}"), "not a JSON integer"));
        }
        v.as_u64()
            .and_then(|n| u32::try_from(n).ok())
            .ok_or_else(|| self.err(format!("{path}.{key}"), "out of range (0 .. 2^32-1)"))
    }

    fn base64(&self, m: &Map<String, Value>, path: &str, key: &str) -> Result<Vec<u8>> {
        let s = self.string(m, path, key)?;
        base64::decode(s).ok_or_else(|| self.err(format!("{path}.{key}"), "not valid base64"))
    }

    fn strings(&self, v: &Value, path: &str) -> Result<Vec<String>> {
        let a = v
            .as_array()
            .ok_or_else(|| self.err(path, "not a JSON array"))?;
        if a.len() > self.limits.max_array {
            return Err(Error::LimitExceeded {
                what: "entries in a LUKS2 JSON array",
                limit: self.limits.max_array as u64,
            });
        }
        a.iter()
            .map(|e| {
                e.as_str()
                    .map(str::to_owned)
                    .ok_or_else(|| self.err(path, "array member is not a string"))
            })
            .collect()
    }

    fn ids(&self, v: &Value, path: &str) -> Result<Vec<u32>> {
        self.strings(v, path)?
            .iter()
            .map(|s| numbered(s).ok_or_else(|| self.err(path, "array member is not a numeric id")))
            .collect()
    }

    fn section<'a>(
        &self,
        root: &'a Map<String, Value>,
        key: &str,
    ) -> Result<Vec<(u32, &'a Map<String, Value>)>> {
        let m = self
            .field(root, "", key)
            .map_err(|_| self.err(key, "missing section"))?;
        let m = self.object(m, key)?;
        if m.len() > self.limits.max_objects {
            return Err(Error::LimitExceeded {
                what: "objects in a LUKS2 metadata section",
                limit: self.limits.max_objects as u64,
            });
        }
        let mut out = Vec::with_capacity(m.len());
        for (name, v) in m {
            let path = format!("{key}.{name}");
            let id = numbered(name).ok_or_else(|| self.err(&path, "object name is not numeric"))?;
            out.push((id, self.object(v, &path)?));
        }
        Ok(out)
    }
}

/// Digits only, no sign, no spaces; leading zeros allowed (as cryptsetup).
fn parse_decimal(s: &str) -> Option<u64> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

fn numbered(s: &str) -> Option<u32> {
    parse_decimal(s).and_then(|v| u32::try_from(v).ok())
}

fn extra(m: &Map<String, Value>, known: &[&str]) -> Map<String, Value> {
    m.iter()
        .filter(|(k, _)| !known.contains(&k.as_str()))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

fn parse_kdf(ctx: &Ctx, m: &Map<String, Value>, path: &str) -> Result<Kdf> {
    let kind = ctx.string(m, path, "type")?;
    let salt = ctx.base64(m, path, "salt")?;
    match kind {
        "pbkdf2" => {
            let hash = HashAlg::from_name(ctx.string(m, path, "hash")?, "pbkdf2 hash")?;
            let iterations = ctx.int(m, path, "iterations")?;
            if iterations == 0 {
                return Err(ctx.err(format!("{path}.iterations"), "must not be 0"));
            }
            Ok(Kdf::Pbkdf2 {
                hash,
                iterations,
                salt,
            })
        }
        "argon2i" | "argon2id" => {
            let variant = if kind == "argon2i" {
                Argon2Variant::Argon2i
            } else {
                Argon2Variant::Argon2id
            };
            let time = ctx.int(m, path, "time")?;
            let memory = ctx.int(m, path, "memory")?;
            let cpus = ctx.int(m, path, "cpus")?;
            if time == 0 {
                return Err(ctx.err(format!("{path}.time"), "must not be 0"));
            }
            if cpus == 0 || cpus > 0xff_ffff {
                return Err(ctx.err(format!("{path}.cpus"), "must be 1 .. 2^24-1"));
            }
            if u64::from(memory) < 8 * u64::from(cpus) {
                return Err(ctx.err(format!("{path}.memory"), "below 8 KiB per lane"));
            }
            if salt.len() < 8 {
                return Err(ctx.err(format!("{path}.salt"), "shorter than 8 bytes"));
            }
            Ok(Kdf::Argon2 {
                variant,
                time,
                memory,
                cpus,
                salt,
            })
        }
        _ => Err(Error::UnsupportedValue {
            field: "keyslot kdf type",
            value: kind.chars().take(32).collect(),
        }),
    }
}

fn parse_keyslot(ctx: &Ctx, m: &Map<String, Value>, path: &str) -> Result<Keyslot> {
    let kind = ctx.string(m, path, "type")?;
    if kind == "reencrypt" {
        return Err(Error::Unsupported {
            feature: "reencryption keyslot (LUKS2 reencryption in progress)",
        });
    }
    if kind != "luks2" {
        return Err(Error::UnsupportedValue {
            field: "keyslot type",
            value: kind.chars().take(32).collect(),
        });
    }
    let key_size = ctx.int(m, path, "key_size")?;
    if key_size == 0 || key_size > 512 {
        return Err(ctx.err(format!("{path}.key_size"), "must be 1 .. 512 bytes"));
    }
    let af_path = format!("{path}.af");
    let af = ctx.sub(m, path, "af")?;
    if ctx.string(af, &af_path, "type")? != "luks1" {
        return Err(ctx.err(format!("{af_path}.type"), "not `luks1`"));
    }
    let stripes = ctx.int(af, &af_path, "stripes")?;
    if stripes != KEYSLOT_STRIPES {
        return Err(ctx.err(format!("{af_path}.stripes"), "must be 4000"));
    }
    let af_hash = HashAlg::from_name(ctx.string(af, &af_path, "hash")?, "af hash")?;
    let area_path = format!("{path}.area");
    let area = ctx.sub(m, path, "area")?;
    if ctx.string(area, &area_path, "type")? != "raw" {
        return Err(Error::UnsupportedValue {
            field: "keyslot area type",
            value: ctx
                .string(area, &area_path, "type")?
                .chars()
                .take(32)
                .collect(),
        });
    }
    let offset = ctx.u64_string(area, &area_path, "offset")?;
    let size = ctx.u64_string(area, &area_path, "size")?;
    let encryption = ctx.string(area, &area_path, "encryption")?;
    if encryption.starts_with("cipher_null") {
        return Err(ctx.err(
            format!("{area_path}.encryption"),
            "cipher_null keyslots are refused (they store the key in plain text)",
        ));
    }
    let area_key_size = ctx.int(area, &area_path, "key_size")?;
    if area_key_size == 0 || area_key_size > 512 {
        return Err(ctx.err(format!("{area_path}.key_size"), "must be 1 .. 512 bytes"));
    }
    if offset % 512 != 0 {
        return Err(ctx.err(format!("{area_path}.offset"), "not aligned to 512 bytes"));
    }
    let af_size = u64::from(key_size) * u64::from(stripes);
    if size < af_size.div_ceil(512) * 512 {
        return Err(ctx.err(
            format!("{area_path}.size"),
            "smaller than the anti-forensic split key",
        ));
    }
    let kdf_obj = ctx.sub(m, path, "kdf")?;
    let kdf = parse_kdf(ctx, kdf_obj, &format!("{path}.kdf"))?;
    let kdf_known: &[&str] = match kdf {
        Kdf::Pbkdf2 { .. } => &["type", "hash", "iterations", "salt"],
        Kdf::Argon2 { .. } => &["type", "time", "memory", "cpus", "salt"],
    };
    let kdf_extra = extra(kdf_obj, kdf_known);
    let priority = match m.get("priority") {
        None => None,
        Some(_) => {
            let p = ctx.int(m, path, "priority")?;
            if p > 2 {
                return Err(ctx.err(format!("{path}.priority"), "must be 0, 1 or 2"));
            }
            Some(p as u8)
        }
    };
    Ok(Keyslot {
        key_size,
        af: AfParams {
            stripes,
            hash: af_hash,
            extra: extra(af, &["type", "stripes", "hash"]),
        },
        area: KeyslotArea {
            offset,
            size,
            encryption: encryption.to_owned(),
            key_size: area_key_size,
            extra: extra(area, &["type", "offset", "size", "encryption", "key_size"]),
        },
        kdf,
        kdf_extra,
        priority,
        extra: extra(m, &["type", "key_size", "af", "area", "kdf", "priority"]),
    })
}

fn parse_segment(ctx: &Ctx, m: &Map<String, Value>, path: &str) -> Result<Segment> {
    let kind = ctx.string(m, path, "type")?;
    let offset = ctx.u64_string(m, path, "offset")?;
    let size = match ctx.string(m, path, "size")? {
        "dynamic" => SegmentSize::Dynamic,
        _ => {
            let s = ctx.u64_string(m, path, "size")?;
            if s == 0 {
                return Err(ctx.err(format!("{path}.size"), "must not be 0"));
            }
            SegmentSize::Bytes(s)
        }
    };
    if offset % 512 != 0 {
        return Err(ctx.err(format!("{path}.offset"), "not aligned to 512 bytes"));
    }
    if let SegmentSize::Bytes(s) = size
        && s % 512 != 0
    {
        return Err(ctx.err(format!("{path}.size"), "not aligned to 512 bytes"));
    }
    let flags = match m.get("flags") {
        None => None,
        Some(v) => Some(ctx.strings(v, &format!("{path}.flags"))?),
    };
    let crypt = if kind == "crypt" {
        let iv_tweak = ctx.u64_string(m, path, "iv_tweak")?;
        let encryption = ctx.string(m, path, "encryption")?.to_owned();
        let sector_size = ctx.int(m, path, "sector_size")?;
        if !matches!(sector_size, 512 | 1024 | 2048 | 4096) {
            return Err(ctx.err(
                format!("{path}.sector_size"),
                "must be 512, 1024, 2048 or 4096",
            ));
        }
        if let SegmentSize::Bytes(s) = size
            && s % u64::from(sector_size) != 0
        {
            return Err(ctx.err(format!("{path}.size"), "not aligned to the sector size"));
        }
        Some(CryptParams {
            iv_tweak,
            encryption,
            sector_size,
        })
    } else {
        None
    };
    let known: &[&str] = if crypt.is_some() {
        &[
            "type",
            "offset",
            "size",
            "flags",
            "iv_tweak",
            "encryption",
            "sector_size",
        ]
    } else {
        &["type", "offset", "size", "flags"]
    };
    Ok(Segment {
        kind: kind.to_owned(),
        offset,
        size,
        flags,
        crypt,
        extra: extra(m, known),
    })
}

fn parse_digest(ctx: &Ctx, m: &Map<String, Value>, path: &str) -> Result<DigestEntry> {
    let kind = ctx.string(m, path, "type")?;
    let keyslots = ctx.ids(ctx.field(m, path, "keyslots")?, &format!("{path}.keyslots"))?;
    let segments = ctx.ids(ctx.field(m, path, "segments")?, &format!("{path}.segments"))?;
    if kind != "pbkdf2" {
        return Err(Error::UnsupportedValue {
            field: "digest type",
            value: kind.chars().take(32).collect(),
        });
    }
    let hash = HashAlg::from_name(ctx.string(m, path, "hash")?, "digest hash")?;
    let iterations = ctx.int(m, path, "iterations")?;
    if iterations == 0 {
        return Err(ctx.err(format!("{path}.iterations"), "must not be 0"));
    }
    let salt = ctx.base64(m, path, "salt")?;
    let digest = ctx.base64(m, path, "digest")?;
    if digest.is_empty() || digest.len() > 64 {
        return Err(ctx.err(format!("{path}.digest"), "must be 1 .. 64 bytes"));
    }
    Ok(DigestEntry {
        keyslots,
        segments,
        hash,
        iterations,
        salt,
        digest,
        extra: extra(
            m,
            &[
                "type",
                "keyslots",
                "segments",
                "hash",
                "iterations",
                "salt",
                "digest",
            ],
        ),
    })
}

fn parse_config(ctx: &Ctx, root: &Map<String, Value>) -> Result<Config> {
    let m = ctx
        .field(root, "", "config")
        .map_err(|_| ctx.err("config", "missing section"))?;
    let m = ctx.object(m, "config")?;
    let json_size = ctx.u64_string(m, "config", "json_size")?;
    let keyslots_size = ctx.u64_string(m, "config", "keyslots_size")?;
    let flags = match m.get("flags") {
        None => None,
        Some(v) => Some(ctx.strings(v, "config.flags")?),
    };
    let requirements = match m.get("requirements") {
        None => None,
        Some(v) => {
            let r = ctx.object(v, "config.requirements")?;
            if let Some(mandatory) = r.get("mandatory") {
                ctx.strings(mandatory, "config.requirements.mandatory")?;
            }
            Some(r.clone())
        }
    };
    Ok(Config {
        json_size,
        keyslots_size,
        flags,
        requirements,
        extra: extra(m, &["json_size", "keyslots_size", "flags", "requirements"]),
    })
}

impl Metadata {
    /// Parses and validates the JSON area of a header copy.
    ///
    /// `area` is the whole JSON area (`hdr_size - 4096` bytes) read at absolute offset
    /// `offset`; the JSON text must end with a NUL and everything after it must be zero.
    pub fn parse(area: &[u8], offset: u64, hdr_size: u64, limits: Limits) -> Result<Self> {
        let ctx = Ctx { offset, limits };
        let end = area.iter().position(|&b| b == 0).ok_or(Error::Malformed {
            structure: "LUKS2 JSON area",
            field: "json",
            offset,
            reason: "JSON text fills the area without a terminating NUL",
        })?;
        if let Some(pos) = area[end..].iter().position(|&b| b != 0) {
            return Err(Error::Malformed {
                structure: "LUKS2 JSON area",
                field: "padding",
                offset: offset + (end + pos) as u64,
                reason: "non-zero bytes after the JSON terminator",
            });
        }
        let value: Value = serde_json::from_slice(&area[..end]).map_err(|e| Error::Json {
            offset,
            line: e.line(),
            column: e.column(),
        })?;
        let root = ctx.object(&value, "(root)")?;
        let mut keyslots = BTreeMap::new();
        for (id, m) in ctx.section(root, "keyslots")? {
            let path = format!("keyslots.{id}");
            if id >= KEYSLOTS_MAX {
                return Err(ctx.err(path, "keyslot id is 32 or more"));
            }
            keyslots.insert(id, parse_keyslot(&ctx, m, &path)?);
        }
        let mut tokens = BTreeMap::new();
        for (id, m) in ctx.section(root, "tokens")? {
            let path = format!("tokens.{id}");
            if id >= KEYSLOTS_MAX {
                return Err(ctx.err(path, "token id is 32 or more"));
            }
            ctx.string(m, &path, "type")?;
            let ks = ctx.ids(
                ctx.field(m, &path, "keyslots")?,
                &format!("{path}.keyslots"),
            )?;
            if ks.iter().any(|k| !keyslots.contains_key(k)) {
                return Err(ctx.err(
                    format!("{path}.keyslots"),
                    "refers to a keyslot that does not exist",
                ));
            }
            tokens.insert(id, m.clone());
        }
        let mut segments = BTreeMap::new();
        for (id, m) in ctx.section(root, "segments")? {
            let path = format!("segments.{id}");
            segments.insert(id, parse_segment(&ctx, m, &path)?);
        }
        if segments.is_empty() {
            return Err(ctx.err("segments", "empty section"));
        }
        let mut digests = BTreeMap::new();
        for (id, m) in ctx.section(root, "digests")? {
            let path = format!("digests.{id}");
            digests.insert(id, parse_digest(&ctx, m, &path)?);
        }
        let config = parse_config(&ctx, root)?;
        let md = Self {
            keyslots,
            tokens,
            segments,
            digests,
            config,
            extra: extra(
                root,
                &["keyslots", "tokens", "segments", "digests", "config"],
            ),
        };
        md.validate(&ctx, hdr_size)?;
        Ok(md)
    }

    /// Cross-object rules: references, coverage, areas, sizes.
    fn validate(&self, ctx: &Ctx, hdr_size: u64) -> Result<()> {
        for (id, d) in &self.digests {
            if d.keyslots.iter().any(|k| !self.keyslots.contains_key(k)) {
                return Err(ctx.err(
                    format!("digests.{id}.keyslots"),
                    "refers to a keyslot that does not exist",
                ));
            }
            if d.segments.iter().any(|s| !self.segments.contains_key(s)) {
                return Err(ctx.err(
                    format!("digests.{id}.segments"),
                    "refers to a segment that does not exist",
                ));
            }
        }
        for (id, s) in &self.segments {
            if s.kind == "crypt" && !self.digests.values().any(|d| d.segments.contains(id)) {
                return Err(ctx.err(
                    format!("segments.{id}"),
                    "crypt segment is not covered by any digest",
                ));
            }
        }
        let json_size = hdr_size.saturating_sub(BINARY_HEADER_SIZE as u64);
        if self.config.json_size != json_size {
            return Err(ctx.err(
                "config.json_size",
                "does not match hdr_size - 4096 of the binary header",
            ));
        }
        let ks_size = self.config.keyslots_size;
        if !ks_size.is_multiple_of(ALIGN) {
            return Err(ctx.err("config.keyslots_size", "not aligned to 4096 bytes"));
        }
        if ks_size > MAX_KEYSLOTS_SIZE {
            return Err(ctx.err("config.keyslots_size", "larger than 128 MiB"));
        }
        let areas_start = hdr_size
            .checked_mul(2)
            .ok_or_else(|| ctx.err("config.json_size", "overflow"))?;
        let areas_end = areas_start
            .checked_add(ks_size)
            .ok_or_else(|| ctx.err("config.keyslots_size", "overflow"))?;
        if let Some(first) = self.first_crypt_offset()
            && first != 0
            && first < areas_end
        {
            return Err(ctx.err(
                "config.keyslots_size",
                "keyslots area runs into the first data segment",
            ));
        }
        let mut intervals: Vec<(u64, u64, u32)> = Vec::with_capacity(self.keyslots.len());
        for (id, k) in &self.keyslots {
            let end = k
                .area
                .offset
                .checked_add(k.area.size)
                .ok_or_else(|| ctx.err(format!("keyslots.{id}.area.size"), "overflow"))?;
            if k.area.offset < areas_start {
                return Err(ctx.err(
                    format!("keyslots.{id}.area.offset"),
                    "keyslot area starts inside the header copies",
                ));
            }
            if end > areas_end {
                return Err(ctx.err(
                    format!("keyslots.{id}.area.size"),
                    "keyslot area ends outside the keyslots area",
                ));
            }
            intervals.push((k.area.offset, end, *id));
        }
        intervals.sort_unstable();
        for w in intervals.windows(2) {
            if let [a, b] = w
                && b.0 < a.1
            {
                return Err(ctx.err(
                    format!("keyslots.{}.area.offset", b.2),
                    "keyslot area overlaps another keyslot area",
                ));
            }
        }
        Ok(())
    }

    /// Offset of the lowest `crypt` segment, if any.
    pub fn first_crypt_offset(&self) -> Option<u64> {
        self.segments
            .values()
            .filter(|s| s.kind == "crypt")
            .map(|s| s.offset)
            .min()
    }

    /// The metadata as a JSON value (known fields first, unknown ones merged back).
    pub fn to_value(&self) -> Value {
        let mut root = self.extra.clone();
        let keyslots: Map<String, Value> = self
            .keyslots
            .iter()
            .map(|(id, k)| (id.to_string(), keyslot_value(k)))
            .collect();
        let tokens: Map<String, Value> = self
            .tokens
            .iter()
            .map(|(id, t)| (id.to_string(), Value::Object(t.clone())))
            .collect();
        let segments: Map<String, Value> = self
            .segments
            .iter()
            .map(|(id, s)| (id.to_string(), segment_value(s)))
            .collect();
        let digests: Map<String, Value> = self
            .digests
            .iter()
            .map(|(id, d)| (id.to_string(), digest_value(d)))
            .collect();
        let c = &self.config;
        let mut config = c.extra.clone();
        config.insert("json_size".into(), c.json_size.to_string().into());
        config.insert("keyslots_size".into(), c.keyslots_size.to_string().into());
        if let Some(f) = &c.flags {
            config.insert("flags".into(), f.clone().into());
        }
        if let Some(r) = &c.requirements {
            config.insert("requirements".into(), Value::Object(r.clone()));
        }
        root.insert("keyslots".into(), Value::Object(keyslots));
        root.insert("tokens".into(), Value::Object(tokens));
        root.insert("segments".into(), Value::Object(segments));
        root.insert("digests".into(), Value::Object(digests));
        root.insert("config".into(), Value::Object(config));
        Value::Object(root)
    }

    /// Compact JSON with sorted keys, NUL-padded to `json_size` bytes.
    pub fn to_json_area(&self, json_size: u64) -> Result<Vec<u8>> {
        let mut text = String::new();
        write_canonical(&self.to_value(), &mut text);
        let size = usize::try_from(json_size).map_err(|_| Error::LimitExceeded {
            what: "JSON area size",
            limit: usize::MAX as u64,
        })?;
        if text.len() >= size {
            return Err(Error::LimitExceeded {
                what: "LUKS2 JSON metadata (bytes, with its NUL) for the JSON area",
                limit: json_size,
            });
        }
        let mut area = text.into_bytes();
        area.resize(size, 0);
        Ok(area)
    }
}

fn keyslot_value(k: &Keyslot) -> Value {
    let mut m = k.extra.clone();
    m.insert("type".into(), "luks2".into());
    m.insert("key_size".into(), k.key_size.into());
    let mut af = k.af.extra.clone();
    af.insert("type".into(), "luks1".into());
    af.insert("stripes".into(), k.af.stripes.into());
    af.insert("hash".into(), k.af.hash.name().into());
    m.insert("af".into(), Value::Object(af));
    let mut area = k.area.extra.clone();
    area.insert("type".into(), "raw".into());
    area.insert("offset".into(), k.area.offset.to_string().into());
    area.insert("size".into(), k.area.size.to_string().into());
    area.insert("encryption".into(), k.area.encryption.clone().into());
    area.insert("key_size".into(), k.area.key_size.into());
    m.insert("area".into(), Value::Object(area));
    let mut kdf = k.kdf_extra.clone();
    kdf.insert("type".into(), k.kdf.type_name().into());
    match &k.kdf {
        Kdf::Pbkdf2 {
            hash, iterations, ..
        } => {
            kdf.insert("hash".into(), hash.name().into());
            kdf.insert("iterations".into(), (*iterations).into());
        }
        Kdf::Argon2 {
            time, memory, cpus, ..
        } => {
            kdf.insert("time".into(), (*time).into());
            kdf.insert("memory".into(), (*memory).into());
            kdf.insert("cpus".into(), (*cpus).into());
        }
    }
    kdf.insert("salt".into(), base64::encode(k.kdf.salt()).into());
    m.insert("kdf".into(), Value::Object(kdf));
    if let Some(p) = k.priority {
        m.insert("priority".into(), p.into());
    }
    Value::Object(m)
}

fn segment_value(s: &Segment) -> Value {
    let mut m = s.extra.clone();
    m.insert("type".into(), s.kind.clone().into());
    m.insert("offset".into(), s.offset.to_string().into());
    let size = match s.size {
        SegmentSize::Dynamic => "dynamic".to_owned(),
        SegmentSize::Bytes(b) => b.to_string(),
    };
    m.insert("size".into(), size.into());
    if let Some(f) = &s.flags {
        m.insert("flags".into(), f.clone().into());
    }
    if let Some(c) = &s.crypt {
        m.insert("iv_tweak".into(), c.iv_tweak.to_string().into());
        m.insert("encryption".into(), c.encryption.clone().into());
        m.insert("sector_size".into(), c.sector_size.into());
    }
    Value::Object(m)
}

fn digest_value(d: &DigestEntry) -> Value {
    let ids = |v: &[u32]| -> Value { v.iter().map(|i| Value::from(i.to_string())).collect() };
    let mut m = d.extra.clone();
    m.insert("type".into(), "pbkdf2".into());
    m.insert("keyslots".into(), ids(&d.keyslots));
    m.insert("segments".into(), ids(&d.segments));
    m.insert("hash".into(), d.hash.name().into());
    m.insert("iterations".into(), d.iterations.into());
    m.insert("salt".into(), base64::encode(&d.salt).into());
    m.insert("digest".into(), base64::encode(&d.digest).into());
    Value::Object(m)
}

/// Compact JSON with every object's keys sorted (independent of the map implementation).
fn write_canonical(v: &Value, out: &mut String) {
    match v {
        Value::Object(m) => {
            let mut keys: Vec<&String> = m.keys().collect();
            keys.sort();
            out.push('{');
            for (i, k) in keys.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(&Value::from(k.as_str()).to_string());
                out.push(':');
                if let Some(v) = m.get(k.as_str()) {
                    write_canonical(v, out);
                }
            }
            out.push('}');
        }
        Value::Array(a) => {
            out.push('[');
            for (i, e) in a.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_canonical(e, out);
            }
            out.push(']');
        }
        other => out.push_str(&other.to_string()),
    }
}
