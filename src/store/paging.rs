//! Walking paged listings, written once: object listings, upload listings,
//! vault job and upload listings all fetch a page with a marker and get the
//! next marker back.

use std::future::Future;

use futures::{Stream, TryStreamExt};

use super::{ObjectMeta, Store};
use crate::error::Result;

/// Every page of a listing as a stream: `fetch(marker)` returns one page's
/// items and the next page's marker (`None` after the last page).
pub fn pages<T, M, F, Fut>(fetch: F) -> impl Stream<Item = Result<Vec<T>>>
where
    F: FnMut(Option<M>) -> Fut,
    Fut: Future<Output = Result<(Vec<T>, Option<M>)>>,
{
    futures::stream::try_unfold((fetch, Some(None)), |(mut fetch, marker)| async move {
        let Some(marker) = marker else { return Ok(None) };
        let (items, next) = fetch(marker).await?;
        Ok(Some((items, (fetch, next.map(Some)))))
    })
}

/// Every item of every page.
pub async fn collect<T, M, F, Fut>(fetch: F) -> Result<Vec<T>>
where
    F: FnMut(Option<M>) -> Fut,
    Fut: Future<Output = Result<(Vec<T>, Option<M>)>>,
{
    pages(fetch).try_concat().await
}

/// The objects under `prefix`, a page at a time, so memory stays flat
/// however many there are.
pub fn objects<'a>(store: &'a dyn Store, prefix: &'a str) -> impl Stream<Item = Result<Vec<ObjectMeta>>> + 'a {
    pages(move |next| async move {
        let page = store.list_page(prefix, next, None).await?;
        Ok((page.objects, page.next))
    })
}

/// Every key under `prefix`, all pages.
pub async fn keys(store: &dyn Store, prefix: &str) -> Result<Vec<String>> {
    objects(store, prefix).map_ok(|page| page.into_iter().map(|o| o.key).collect::<Vec<_>>()).try_concat().await
}

/// Every version and delete marker under `prefix`, page by page.
pub async fn versions(store: &dyn Store, prefix: &str) -> Result<Vec<super::ObjectVersion>> {
    collect(move |next| async move {
        let page = store.list_versions_page(prefix, next).await?;
        Ok((page.versions, page.next))
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(flavor = "current_thread")]
    async fn pages_follow_markers_to_the_end() {
        let pages_seen = std::cell::Cell::new(0);
        let all = collect(|marker: Option<u32>| {
            pages_seen.set(pages_seen.get() + 1);
            async move {
                let start = marker.unwrap_or(0);
                let items: Vec<u32> = (start..(start + 3).min(8)).collect();
                let next = (start + 3 < 8).then_some(start + 3);
                Ok((items, next))
            }
        })
        .await
        .unwrap();
        assert_eq!(all, (0..8).collect::<Vec<_>>());
        assert_eq!(pages_seen.get(), 3);
    }
}
