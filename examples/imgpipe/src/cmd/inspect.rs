//! `imgpipe inspect FILE [--json]`: recognise a format and describe it.

use std::fs::File;
use std::io::{BufReader, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, bail};
use serde::Serialize;
use serde_json::Value;

use crate::output;

/// Arguments of `imgpipe inspect`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The image, device or kickstart file.
    file: PathBuf,
    /// Print a JSON object instead of text.
    #[arg(long)]
    json: bool,
}

/// How many leading bytes are read to recognise a format.
const HEAD: u64 = 64 * 1024;

/// The formats `inspect` recognises, in the order they are tried.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    /// LUKS2 volume.
    Luks2,
    /// squashfs 4.0 image.
    Squashfs,
    /// EROFS image.
    Erofs,
    /// ISO9660 image, hybrid or not.
    Iso9660,
    /// GPT disk.
    Gpt,
    /// FAT12/16/32 file system.
    Fat,
    /// MBR-partitioned disk.
    Mbr,
    /// Kickstart file.
    Kickstart,
}

impl Format {
    /// Recognises the format from the first bytes.
    pub fn detect(head: &[u8]) -> Option<Self> {
        // ISO before GPT/MBR: a hybrid ISO carries both in its system area. GPT before FAT
        // and FAT before MBR: a FAT boot sector also ends in 0x55AA.
        if imgpipe_luks::detect(head) {
            Some(Self::Luks2)
        } else if imgpipe_squashfs::detect_squashfs(head) {
            Some(Self::Squashfs)
        } else if imgpipe_squashfs::detect_erofs(head) {
            Some(Self::Erofs)
        } else if imgpipe_isofs::detect(head) {
            Some(Self::Iso9660)
        } else if imgpipe_gptpart::detect_gpt(head).is_some() {
            Some(Self::Gpt)
        } else if imgpipe_gptpart::detect_fat(head) {
            Some(Self::Fat)
        } else if imgpipe_gptpart::detect_mbr(head) {
            Some(Self::Mbr)
        } else if imgpipe_kickstart::detect(head) {
            Some(Self::Kickstart)
        } else {
            None
        }
    }
}

/// The `--json` report.
#[derive(Debug, Serialize)]
pub struct Report {
    /// Which format.
    pub format: Format,
    /// File size in bytes.
    pub size: u64,
    /// Format-specific description.
    pub details: Value,
}

fn details(format: Format, path: &Path) -> anyhow::Result<Value> {
    let open = || -> anyhow::Result<BufReader<File>> {
        Ok(BufReader::new(File::open(path).with_context(|| {
            format!("cannot open {}", path.display())
        })?))
    };
    let value = match format {
        Format::Luks2 => serde_json::to_value(imgpipe_luks::inspect(open()?)?)?,
        Format::Squashfs => serde_json::to_value(imgpipe_squashfs::inspect_squashfs(open()?)?)?,
        Format::Erofs => serde_json::to_value(imgpipe_squashfs::inspect_erofs(open()?)?)?,
        Format::Iso9660 => serde_json::to_value(imgpipe_isofs::inspect(open()?)?)?,
        Format::Gpt => serde_json::to_value(imgpipe_gptpart::inspect_gpt(open()?)?)?,
        Format::Fat => serde_json::to_value(imgpipe_gptpart::inspect_fat(open()?)?)?,
        Format::Mbr => serde_json::to_value(imgpipe_gptpart::inspect_mbr(open()?)?)?,
        Format::Kickstart => {
            let text =
                std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
            serde_json::to_value(imgpipe_kickstart::inspect(&String::from_utf8_lossy(&text)))?
        }
    };
    Ok(value)
}

/// Recognises and describes `path`.
pub fn report(path: &Path) -> anyhow::Result<Report> {
    let mut f = File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
    // Seek to the end rather than trust metadata: block devices report size 0.
    let size = f
        .seek(SeekFrom::End(0))
        .with_context(|| format!("cannot size {}", path.display()))?;
    f.seek(SeekFrom::Start(0))?;
    let mut head = Vec::new();
    f.take(HEAD)
        .read_to_end(&mut head)
        .with_context(|| format!("cannot read {}", path.display()))?;
    let Some(format) = Format::detect(&head) else {
        bail!("{}: unrecognised format", path.display());
    };
    let details = details(format, path).with_context(|| {
        format!(
            "{}: looks like {} but cannot be read",
            path.display(),
            serde_json::to_value(format)
                .ok()
                .and_then(|v| v.as_str().map(str::to_owned))
                .unwrap_or_default()
        )
    })?;
    Ok(Report {
        format,
        size,
        details,
    })
}

fn print_value(prefix: &str, v: &Value) {
    match v {
        Value::Object(map) => {
            for (k, v) in map {
                let key = if prefix.is_empty() {
                    k.clone()
                } else {
                    format!("{prefix}.{k}")
                };
                print_value(&key, v);
            }
        }
        Value::Array(items) if items.iter().all(|i| !i.is_object() && !i.is_array()) => {
            let parts: Vec<String> = items.iter().map(scalar).collect();
            println!("{prefix}: [{}]", parts.join(", "));
        }
        Value::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                print_value(&format!("{prefix}[{i}]"), item);
            }
        }
        other => println!("{prefix}: {}", scalar(other)),
    }
}

fn scalar(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => "-".into(),
        other => other.to_string(),
    }
}

/// Runs `imgpipe inspect`.
pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let report = report(&args.file)?;
    if args.json {
        output::print_json(&report)?;
    } else {
        let format = serde_json::to_value(report.format)?;
        println!("format: {}", scalar(&format));
        println!("size: {}", report.size);
        print_value("", &report.details);
    }
    Ok(output::exit(output::SUCCESS))
}
