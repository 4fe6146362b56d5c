//! Builders: collect, plan the layout, then emit.

pub(crate) mod fat;
pub(crate) mod gpt;
pub(crate) mod mbr;
