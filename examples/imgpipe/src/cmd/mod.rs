//! One module per subcommand group; each has `Args` (clap) and `run`.

pub mod build;
mod describe;
pub mod diff;
mod diff_html;
pub mod erofs;
pub mod fat;
pub mod gpt;
pub mod inject;
pub mod inspect;
pub mod iso;
pub mod ks;
mod listing;
pub mod luks;
pub mod rebuild;
pub mod serve;
pub mod squashfs;
pub mod verify;
