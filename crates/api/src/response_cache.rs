//! The response cache: the rendered answers of a resource's reads (the JSON
//! a client receives), kept in a [`VersionedCache`] (Redis) outside the
//! domain, for every resource alike.
//!
//! A handler reads through [`Views`]: on a hit the stored bytes are the
//! answer (storage is not asked, nothing is rendered); on a miss the
//! service loads, the handler's renderer renders, and the bytes are stored
//! under the namespace version the lookup saw. The domain never sees any of
//! it: its services report each successful write as a [`Change`], and
//! [`ResponseCache`], their [`ChangeObserver`], makes what the write changed
//! unreachable before the service returns, so the writer's next read (and
//! every other member's, on every instance) sees the write.
//!
//! Namespaces, per resource:
//! - `<resource>:<scope>`: the list pages of one scope (a user's personal
//!   records, `u:<id>`, or an organization's, `o:<id>`); every write in the
//!   scope invalidates them;
//! - `<resource>:i:<id>`: the views of one record, keyed by the scope that
//!   read it (a view is only served to the scope it was read in); only a
//!   change or deletion of *that* record invalidates them, so under a
//!   write-heavy load (creates) record views stay cached where pages cannot.
//!
//! Every key starts with the resource's representation version (`v<n>:`),
//! and the Redis adapter adds the build ([`build`]): instances of two
//! releases sharing one Redis never serve each other's shape, while a write
//! on either bumps the one namespace version both read.
//!
//! The credential's right to read the resource is checked before the cache
//! is asked (an API key without `read` gets 403, never cached bytes). Only
//! successful reads are cached (a missing record always asks storage). A
//! cache that fails is bypassed: the read goes to storage; an invalidation
//! that fails is retried by the adapter ([`infra::cache::ResilientVersionedCache`]).

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use domain::Error;
use domain::cache::VersionedCache;
use domain::change::{Change, ChangeObserver};
use domain::page::Page;
use domain::scope::Caller;
use sha2::{Digest as _, Sha256};

use crate::cursor::Keyset;

/// What cached answers are keyed by besides the resource's representation:
/// this build (version and commit).
pub fn build() -> String {
    format!("{}+{}", env!("CARGO_PKG_VERSION"), crate::process_metrics::COMMIT)
}

/// The cache every resource's reads share, and the observer of every
/// resource's writes.
pub struct ResponseCache {
    cache: Arc<dyn VersionedCache>,
    ttl: Duration,
}

impl ResponseCache {
    /// Answers kept in `cache` for `ttl`.
    pub fn new(cache: Arc<dyn VersionedCache>, ttl: Duration) -> Self {
        Self { cache, ttl }
    }
}

fn lists_namespace(resource: &str, scope: &str) -> String {
    format!("{resource}:{scope}")
}

/// (`i:` cannot begin a scope, which is `u:` or `o:`.)
fn record_namespace(resource: &str, id: &str) -> String {
    format!("{resource}:i:{id}")
}

#[async_trait]
impl ChangeObserver for ResponseCache {
    async fn changed(&self, change: &Change) {
        let lists = lists_namespace(change.resource, &change.scope);
        match &change.record {
            None => {
                let _ = self.cache.invalidate(&lists).await;
            }
            Some(id) => {
                let record = record_namespace(change.resource, id);
                let _ = futures_util::join!(self.cache.invalidate(&lists), self.cache.invalidate(&record));
            }
        }
    }
}

/// A rendered list page, and where the next page starts (`None`: this is
/// the last one).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListView<P> {
    /// The rendered page.
    pub body: Vec<u8>,
    /// The keyset position of the next page, if there is one.
    pub next: Option<P>,
}

/// One resource's reads, through the cache when there is one.
#[derive(Clone, Copy)]
pub struct Views<'a> {
    resource: &'static str,
    representation: u32,
    cache: Option<&'a ResponseCache>,
}

impl<'a> Views<'a> {
    /// The reads of `resource` (its name, as API-key permissions and
    /// [`Change`]s name it) rendered in version `representation` of its
    /// JSON (raise it when the shape changes), cached in `cache` if any.
    pub fn new(resource: &'static str, representation: u32, cache: Option<&'a ResponseCache>) -> Self {
        Self {
            resource,
            representation,
            cache,
        }
    }

    /// A page of the caller's scope: cached, or `load`ed and `render`ed.
    ///
    /// # Errors
    /// [`Error::Forbidden`] when the credential may not read the resource;
    /// what `load` or `render` return.
    pub async fn list<P, T>(
        &self,
        caller: &Caller,
        page: &Page<P>,
        load: impl Future<Output = Result<(Vec<T>, Option<P>), Error>>,
        render: impl FnOnce(Vec<T>) -> Result<Vec<u8>, Error>,
    ) -> Result<ListView<P>, Error>
    where
        P: Keyset,
    {
        caller.permit(self.resource, "read")?;
        let namespace = lists_namespace(self.resource, &caller.namespace());
        let framed = self
            .view(&namespace, self.list_key(page), load, |(rows, next)| {
                Ok(frame(render(rows)?, next.as_ref()))
            })
            .await?;
        unframe(framed)
    }

    /// Record `id` as the caller's scope sees it: cached, or `load`ed and
    /// `render`ed. `id` must be the record's canonical id (parsed already:
    /// a malformed one never reaches the cache).
    ///
    /// # Errors
    /// As [`Views::list`].
    pub async fn record<T>(
        &self,
        caller: &Caller,
        id: impl std::fmt::Display,
        load: impl Future<Output = Result<T, Error>>,
        render: impl FnOnce(T) -> Result<Vec<u8>, Error>,
    ) -> Result<Vec<u8>, Error> {
        caller.permit(self.resource, "read")?;
        let namespace = record_namespace(self.resource, &id.to_string());
        let key = format!("v{}:{}", self.representation, caller.namespace());
        self.view(&namespace, key, load, render).await
    }

    fn list_key<P: Keyset>(&self, page: &Page<P>) -> String {
        let version = self.representation;
        let mut key = match page.after() {
            None => format!("v{version}:page:{}:{}", page.skip(), page.limit()),
            Some(after) => {
                let mut bytes = Vec::new();
                after.write(&mut bytes);
                format!(
                    "v{version}:after{}:{}:{}",
                    P::VERSION,
                    URL_SAFE_NO_PAD.encode(bytes),
                    page.limit()
                )
            }
        };
        // Another sort or filter is another answer: keyed by its canonical
        // text's digest (a `q` may hold anything).
        let query = page.query();
        if !query.is_default() {
            let digest = Sha256::digest(query.canonical().as_bytes());
            key.push_str(":q");
            key.push_str(&URL_SAFE_NO_PAD.encode(&digest[..12]));
        }
        key
    }

    /// The cached bytes of `key` in `namespace`, or `load` rendered (and
    /// stored under the version the lookup saw).
    async fn view<T>(
        &self,
        namespace: &str,
        key: String,
        load: impl Future<Output = Result<T, Error>>,
        render: impl FnOnce(T) -> Result<Vec<u8>, Error>,
    ) -> Result<Vec<u8>, Error> {
        let Some(cache) = self.cache else {
            return render(load.await?);
        };
        let version = match cache.cache.get(namespace, &key).await {
            Ok((_, Some(body))) => return Ok(body),
            Ok((version, None)) => Some(version),
            Err(_) => None,
        };
        let body = render(load.await?)?;
        if let Some(version) = version {
            let _ = cache.cache.put(namespace, version, &key, body.clone(), cache.ttl).await;
        }
        Ok(body)
    }
}

/// A cached list page: the body, then a trailer — `0`, or the next
/// position's [`Keyset`] bytes and `1` — so that framing and unframing only
/// append and truncate (a page is kilobytes; nothing is copied or shifted).
/// A list page's body, then its next position's bytes and their length
/// (2 bytes), then `1`; or the body and `0` when it is the last page.
fn frame<P: Keyset>(mut body: Vec<u8>, next: Option<&P>) -> Vec<u8> {
    match next {
        None => body.push(0),
        Some(next) => {
            let start = body.len();
            next.write(&mut body);
            let len = u16::try_from(body.len() - start).unwrap_or(u16::MAX);
            body.extend_from_slice(&len.to_be_bytes());
            body.push(1);
        }
    }
    body
}

fn unframe<P: Keyset>(mut framed: Vec<u8>) -> Result<ListView<P>, Error> {
    let corrupt = || Error::Unexpected(anyhow::anyhow!("malformed cached list page"));
    let next = match framed.pop() {
        Some(0) => None,
        Some(1) if framed.len() >= 2 => {
            let end = framed.len() - 2;
            let len = usize::from(u16::from_be_bytes([framed[end], framed[end + 1]]));
            let at = end.checked_sub(len).ok_or_else(corrupt)?;
            let next = P::read(&framed[at..end]).ok_or_else(corrupt)?;
            framed.truncate(at);
            Some(next)
        }
        _ => return Err(corrupt()),
    };
    Ok(ListView { body: framed, next })
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{TimeZone, Utc};
    use domain::auth::api_key::Permissions;
    use domain::cache::MockVersionedCache;
    use domain::item::{ItemId, Position};
    use domain::user::User;

    fn alice() -> Caller {
        let at = Utc.with_ymd_and_hms(2026, 3, 4, 5, 6, 7).unwrap();
        Caller::personal(User {
            id: "alice".into(),
            email: "alice@example.com".into(),
            name: "alice".into(),
            email_verified: false,
            image: None,
            created_at: at,
            updated_at: at,
        })
    }

    fn position() -> Position {
        Position {
            key: domain::page::SortKey::Time(Utc.with_ymd_and_hms(2026, 3, 4, 5, 6, 7).unwrap()),
            id: ItemId::generate(),
        }
    }

    fn cache(mock: MockVersionedCache) -> ResponseCache {
        ResponseCache::new(Arc::new(mock), Duration::from_secs(30))
    }

    async fn unreachable<T>() -> Result<T, Error> {
        panic!("storage must not be asked")
    }

    fn names(rows: Vec<&str>) -> Result<Vec<u8>, Error> {
        Ok(rows.join(",").into_bytes())
    }

    #[tokio::test]
    async fn a_cached_page_is_served_without_asking_storage() {
        let next = position();
        let stored = next.clone();
        let mut mock = MockVersionedCache::new();
        mock.expect_get()
            .withf(|namespace, key| namespace == "items:u:alice" && key == "v3:page:0:100")
            .returning(move |_, _| Ok((3, Some(frame(b"cached".to_vec(), Some(&stored))))));
        let cache = cache(mock);
        let views = Views::new("items", 3, Some(&cache));
        let page = views
            .list(&alice(), &Page::default(), unreachable::<(Vec<&str>, _)>(), names)
            .await
            .unwrap();
        assert_eq!(
            page,
            ListView {
                body: b"cached".to_vec(),
                next: Some(next)
            }
        );
    }

    #[tokio::test]
    async fn a_miss_renders_and_stores_under_the_version_it_saw() {
        let mut mock = MockVersionedCache::new();
        mock.expect_get().returning(|_, _| Ok((7, None)));
        mock.expect_put()
            .withf(|namespace, version, key, body, ttl| {
                namespace == "items:u:alice"
                    && *version == 7
                    && key == "v1:page:0:100"
                    && body[..] == *b"a,b\0"
                    && *ttl == Duration::from_secs(30)
            })
            .times(1)
            .returning(|_, _, _, _, _| Ok(()));
        let cache = cache(mock);
        let page = Views::new("items", 1, Some(&cache))
            .list(
                &alice(),
                &Page::<Position>::default(),
                async { Ok((vec!["a", "b"], None)) },
                names,
            )
            .await
            .unwrap();
        assert_eq!(page.body, b"a,b");
    }

    #[test]
    fn each_sort_and_filter_has_its_own_key_and_the_default_keeps_the_plain_one() {
        use domain::resource::list::{ListFilter, ListQuery, Sort, SortField};
        let views = Views::new("items", 2, None);
        let plain = Page::<Position>::default();
        let key = |query: ListQuery| views.list_key(&plain.clone().with_query(query));
        assert_eq!(key(ListQuery::default()), "v2:page:0:100");
        let by_name = ListQuery {
            sort: Sort {
                field: SortField::Text("name"),
                descending: false,
            },
            ..ListQuery::default()
        };
        let searching = |text: &str| ListQuery {
            filter: ListFilter {
                search: Some(("name", text.to_owned())),
                ..ListFilter::default()
            },
            ..ListQuery::default()
        };
        let keys = [
            key(by_name),
            key(searching("lamp")),
            key(searching("lamps")),
            key(ListQuery::default()),
        ];
        for (n, a) in keys.iter().enumerate() {
            assert!(a.starts_with("v2:page:0:100"), "{a}");
            for b in &keys[n + 1..] {
                assert_ne!(a, b);
            }
        }
    }

    #[tokio::test]
    async fn keyset_pages_are_keyed_by_their_position_and_resources_apart() {
        let after = position();
        let page = Page::new(None, Some(5)).unwrap().starting_after(Some(after.clone()));
        let mut bytes = Vec::new();
        after.write(&mut bytes);
        let expected = format!("v1:after2:{}:5", URL_SAFE_NO_PAD.encode(bytes));
        let mut mock = MockVersionedCache::new();
        mock.expect_get()
            .withf(move |namespace, key| namespace == "projects:u:alice" && key == expected)
            .times(1)
            .returning(|_, _| Ok((1, None)));
        mock.expect_put().returning(|_, _, _, _, _| Ok(()));
        let cache = cache(mock);
        Views::new("projects", 1, Some(&cache))
            .list(&alice(), &page, async { Ok((vec!["a"], None)) }, names)
            .await
            .unwrap();
    }

    #[tokio::test]
    async fn a_record_is_cached_in_its_own_namespace_under_the_readers_scope() {
        let id = ItemId::generate();
        let namespace = format!("items:i:{id}");
        let mut mock = MockVersionedCache::new();
        let expected = namespace.clone();
        mock.expect_get()
            .withf(move |ns, key| *ns == expected && key == "v2:u:alice")
            .times(1)
            .returning(|_, _| Ok((4, None)));
        mock.expect_put()
            .withf(move |ns, version, key, body, _| {
                *ns == namespace && *version == 4 && key == "v2:u:alice" && body == b"thing"
            })
            .times(1)
            .returning(|_, _, _, _, _| Ok(()));
        let cache = cache(mock);
        let body = Views::new("items", 2, Some(&cache))
            .record(&alice(), id, async { Ok("thing") }, |name: &str| {
                Ok(name.as_bytes().to_vec())
            })
            .await
            .unwrap();
        assert_eq!(body, b"thing");
    }

    #[tokio::test]
    async fn a_missing_record_is_not_cached() {
        let mut mock = MockVersionedCache::new();
        mock.expect_get().returning(|_, _| Ok((1, None)));
        mock.expect_put().never();
        let cache = cache(mock);
        let missing = Views::new("items", 1, Some(&cache))
            .record(
                &alice(),
                ItemId::generate(),
                async { Err::<&str, _>(Error::NotFound) },
                |name: &str| Ok(name.as_bytes().to_vec()),
            )
            .await;
        assert!(matches!(missing, Err(Error::NotFound)));
    }

    #[tokio::test]
    async fn an_unreachable_cache_is_bypassed() {
        let mut mock = MockVersionedCache::new();
        mock.expect_get()
            .returning(|_, _| Err(Error::Unavailable(anyhow::anyhow!("redis down"))));
        mock.expect_put().never();
        let cache = cache(mock);
        let page = Views::new("items", 1, Some(&cache))
            .list(
                &alice(),
                &Page::<Position>::default(),
                async { Ok((vec!["a"], None)) },
                names,
            )
            .await
            .unwrap();
        assert_eq!(page.body, b"a");
    }

    #[tokio::test]
    async fn a_credential_that_may_not_read_never_gets_cached_bytes() {
        let mut mock = MockVersionedCache::new();
        mock.expect_get().never();
        let cache = cache(mock);
        let caller = Caller {
            permissions: Some(Permissions::parse(r#"{"items":["create"]}"#)),
            ..alice()
        };
        let views = Views::new("items", 1, Some(&cache));
        let refused = views
            .list(
                &caller,
                &Page::<Position>::default(),
                unreachable::<(Vec<&str>, _)>(),
                names,
            )
            .await;
        assert!(matches!(refused, Err(Error::Forbidden(_))));
        let refused = views
            .record(&caller, "x", unreachable::<&str>(), |name: &str| {
                Ok(name.as_bytes().to_vec())
            })
            .await;
        assert!(matches!(refused, Err(Error::Forbidden(_))));
    }

    #[tokio::test]
    async fn a_write_invalidates_the_scopes_pages_and_a_change_that_records_views() {
        let invalidated = Arc::new(std::sync::Mutex::new(Vec::new()));
        let mut mock = MockVersionedCache::new();
        let seen = invalidated.clone();
        mock.expect_invalidate().returning(move |namespace| {
            seen.lock().unwrap().push(namespace.to_owned());
            Err(Error::Unavailable(anyhow::anyhow!("redis down")))
        });
        let cache = cache(mock);
        cache.changed(&Change::created("items", &alice())).await;
        assert_eq!(*invalidated.lock().unwrap(), ["items:u:alice"]);
        cache.changed(&Change::changed("items", &alice(), "42")).await;
        let mut after = invalidated.lock().unwrap().split_off(1);
        after.sort();
        assert_eq!(after, ["items:i:42", "items:u:alice"]);
    }

    #[test]
    fn cached_pages_keep_their_next_position_and_a_bare_body_is_refused() {
        let next = position();
        for (body, next) in [(b"[1]".to_vec(), Some(next)), (b"[]".to_vec(), None)] {
            let view: ListView<Position> = unframe(frame(body.clone(), next.as_ref())).unwrap();
            assert_eq!(view, ListView { body, next });
        }
        assert!(unframe::<Position>(b"[]".to_vec()).is_err());
    }
}
