//! `list_directory CFG [DIR]`: every object under DIR (default: the
//! configured folder), one `key<TAB>size` line each, a page at a time so a
//! listing of millions of keys needs no more memory than one of ten.

use std::io::Write;
use std::path::Path;

use crate::config::Purpose;
use crate::error::{Error, Result};
use futures::TryStreamExt;

use crate::layout;
use crate::store::paging;

use super::Context;

pub async fn run(config: &Path, dir: Option<&str>) -> Result<()> {
    let ctx = Context::open(config, Purpose::Other).await?;
    let prefix = layout::directory_prefix(dir.unwrap_or(&ctx.config.folder))?;
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    let mut pages = std::pin::pin!(paging::objects(&*ctx.store, &prefix));
    while let Some(page) = pages.try_next().await? {
        for object in &page {
            writeln!(out, "{}\t{}", layout::printable(&object.key), object.size)
                .map_err(|e| Error::io("writing to stdout", e))?;
        }
    }
    out.flush().map_err(|e| Error::io("writing to stdout", e))
}
