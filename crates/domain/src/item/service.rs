//! Item use cases: ownership, timestamps and ids are decided here, not by the
//! client and not by storage.
//!
//! Reads can also be answered as a rendered *view* (the bytes a client gets),
//! cached per owner when a [`VersionedCache`] is attached: every write of the
//! service makes that owner's cached views unreachable before it returns, so
//! a caller cannot forget to invalidate, and the next read sees the write.
//! Only successful reads are cached (a missing item always asks storage). A
//! cache that fails is bypassed: the read goes to storage, the write still
//! succeeds (the cache adapter retries its invalidation and logs, throttled).

use std::sync::Arc;
use std::time::Duration;

use super::model::{Item, ItemChanges, ItemId, ItemPatch, NewItem, Page, Position};
use super::port::ItemRepository;
use crate::cache::VersionedCache;
use crate::clock::Clock;
use crate::error::Error;
use crate::user::User;

/// The item use cases for a signed-in user.
pub struct ItemService {
    repository: Arc<dyn ItemRepository>,
    clock: Arc<dyn Clock>,
    views: Option<ViewCache>,
}

/// Where rendered views are cached, and for how long.
struct ViewCache {
    cache: Arc<dyn VersionedCache>,
    ttl: Duration,
}

/// Turns what was read into the bytes a client receives.
pub type Render<'a, T> = &'a (dyn Fn(T) -> Result<Vec<u8>, Error> + Sync);

fn list_key(page: Page) -> String {
    match page.after() {
        None => format!("page:{}:{}", page.skip(), page.limit()),
        Some(after) => format!(
            "page:after:{}:{}:{}",
            after.created_at.timestamp_micros(),
            after.id,
            page.limit()
        ),
    }
}

/// A rendered list page, and where the next page starts (`None`: this is
/// the last one).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListView {
    /// The rendered page.
    pub body: Vec<u8>,
    /// The keyset position of the next page, if there is one.
    pub next: Option<Position>,
}

/// A cached list view: `0`, or `1` + µs (8 bytes) + id (16 bytes), then the body.
fn frame(view: ListView) -> Vec<u8> {
    let mut framed = Vec::with_capacity(view.body.len() + 25);
    match view.next {
        None => framed.push(0),
        Some(next) => {
            framed.push(1);
            framed.extend_from_slice(&next.created_at.timestamp_micros().to_be_bytes());
            framed.extend_from_slice(next.id.as_uuid().as_bytes());
        }
    }
    framed.extend_from_slice(&view.body);
    framed
}

fn unframe(mut framed: Vec<u8>) -> Result<ListView, Error> {
    let corrupt = || Error::Unexpected(anyhow::anyhow!("malformed cached list page"));
    let (next, header) = match framed.first() {
        Some(0) => (None, 1),
        Some(1) if framed.len() >= 25 => {
            let micros = i64::from_be_bytes(framed[1..9].try_into().map_err(|_| corrupt())?);
            let id = uuid::Uuid::from_slice(&framed[9..25]).map_err(|_| corrupt())?;
            let created_at = chrono::DateTime::from_timestamp_micros(micros).ok_or_else(corrupt)?;
            (
                Some(Position {
                    created_at,
                    id: ItemId::from(id),
                }),
                25,
            )
        }
        _ => return Err(corrupt()),
    };
    framed.drain(..header);
    Ok(ListView { body: framed, next })
}

fn item_key(id: ItemId) -> String {
    format!("item:{}", id.as_uuid())
}

impl ItemService {
    /// Wires the service to its ports.
    pub fn new(repository: Arc<dyn ItemRepository>, clock: Arc<dyn Clock>) -> Self {
        Self {
            repository,
            clock,
            views: None,
        }
    }

    /// Caches rendered views in `cache` for `ttl` (see the module docs).
    #[must_use]
    pub fn with_view_cache(mut self, cache: Arc<dyn VersionedCache>, ttl: Duration) -> Self {
        self.views = Some(ViewCache { cache, ttl });
        self
    }

    /// The cached view of `key` in `owner`'s namespace, or `load` rendered
    /// (and cached under the version the lookup saw).
    async fn view<T>(
        &self,
        owner: &str,
        key: String,
        render: Render<'_, T>,
        load: impl std::future::Future<Output = Result<T, Error>>,
    ) -> Result<Vec<u8>, Error> {
        let Some(views) = &self.views else {
            return render(load.await?);
        };
        let version = match views.cache.get(owner, &key).await {
            Ok((_, Some(body))) => return Ok(body),
            Ok((version, None)) => Some(version),
            Err(_) => None,
        };
        let body = render(load.await?)?;
        if let Some(version) = version {
            let _ = views.cache.put(owner, version, &key, body.clone(), views.ttl).await;
        }
        Ok(body)
    }

    /// After a write: `owner`'s cached views must not be served again.
    async fn invalidate(&self, owner: &str) {
        if let Some(views) = &self.views {
            let _ = views.cache.invalidate(owner).await;
        }
    }

    /// [`ItemService::list`], rendered, from the view cache when it holds it.
    ///
    /// # Errors
    /// As [`ItemService::list`], or what `render` returns.
    pub async fn list_view(&self, user: &User, page: Page, render: Render<'_, Vec<Item>>) -> Result<ListView, Error> {
        let framed = self
            .view(
                &user.id,
                list_key(page),
                &|(items, next): (Vec<Item>, Option<Position>)| {
                    Ok(frame(ListView {
                        body: render(items)?,
                        next,
                    }))
                },
                self.list_page(user, page),
            )
            .await?;
        unframe(framed)
    }

    /// A page of the caller's items and the position after it when more follow.
    ///
    /// # Errors
    /// Storage errors.
    pub async fn list_page(&self, user: &User, page: Page) -> Result<(Vec<Item>, Option<Position>), Error> {
        let mut items = self.list(user, page.with_one_more()).await?;
        let limit = usize::try_from(page.limit()).unwrap_or(usize::MAX);
        if items.len() <= limit {
            return Ok((items, None));
        }
        items.truncate(limit);
        let next = items.last().map(Position::after);
        Ok((items, next))
    }

    /// [`ItemService::get`], rendered, from the view cache when it holds it.
    /// A malformed id is [`Error::NotFound`] without touching cache or storage.
    ///
    /// # Errors
    /// As [`ItemService::get`], or what `render` returns.
    pub async fn get_view(&self, user: &User, raw_id: &str, render: Render<'_, Item>) -> Result<Vec<u8>, Error> {
        let id = ItemId::parse(raw_id).ok_or(Error::NotFound)?;
        self.view(&user.id, item_key(id), render, self.get(user, raw_id)).await
    }

    /// The caller's items, newest first.
    ///
    /// # Errors
    /// Storage errors, as the repository reports them.
    pub async fn list(&self, user: &User, page: Page) -> Result<Vec<Item>, Error> {
        let mut items = self.repository.list(&user.id, page).await?;
        items.retain(|item| item.owner_id == user.id);
        Ok(items)
    }

    /// One of the caller's items. An id that is not a UUID, a missing item and
    /// another user's item are all [`Error::NotFound`].
    ///
    /// # Errors
    /// [`Error::NotFound`], or storage errors.
    pub async fn get(&self, user: &User, raw_id: &str) -> Result<Item, Error> {
        let id = ItemId::parse(raw_id).ok_or(Error::NotFound)?;
        self.find_owned(user, id).await
    }

    /// The caller's item `id`; a missing or foreign one is [`Error::NotFound`].
    async fn find_owned(&self, user: &User, id: ItemId) -> Result<Item, Error> {
        self.repository
            .find(&user.id, id)
            .await?
            .filter(|item| item.owner_id == user.id)
            .ok_or(Error::NotFound)
    }

    /// Creates an item owned by the caller, with a fresh id and timestamps.
    ///
    /// # Errors
    /// Storage errors.
    pub async fn create(&self, user: &User, new: NewItem) -> Result<Item, Error> {
        let now = self.clock.now();
        let item = Item {
            id: ItemId::generate(),
            name: new.name,
            description: new.description,
            owner_id: user.id.clone(),
            is_active: new.is_active,
            created_at: now,
            updated_at: now,
        };
        self.repository.insert(&item).await?;
        self.invalidate(&user.id).await;
        Ok(item)
    }

    /// Applies a partial update to one of the caller's items and moves its `updated_at`.
    ///
    /// # Errors
    /// [`Error::NotFound`] as for [`ItemService::get`], or storage errors.
    pub async fn update(&self, user: &User, raw_id: &str, patch: ItemPatch) -> Result<Item, Error> {
        let id = ItemId::parse(raw_id).ok_or(Error::NotFound)?;
        let changes = ItemChanges {
            patch,
            updated_at: self.clock.now(),
            unless_changed_since: None,
        };
        let item = self
            .repository
            .update(&user.id, id, &changes)
            .await?
            .filter(|item| item.owner_id == user.id)
            .ok_or(Error::NotFound)?;
        self.invalidate(&user.id).await;
        Ok(item)
    }

    /// Deletes one of the caller's items.
    ///
    /// # Errors
    /// [`Error::NotFound`] as for [`ItemService::get`], or storage errors.
    pub async fn delete(&self, user: &User, raw_id: &str) -> Result<(), Error> {
        let id = ItemId::parse(raw_id).ok_or(Error::NotFound)?;
        if self.repository.delete(&user.id, id).await? {
            self.invalidate(&user.id).await;
            Ok(())
        } else {
            Err(Error::NotFound)
        }
    }
}

/// A client's condition on an item's current state (HTTP `If-Match`),
/// judged on the item as stored.
pub type Precondition<'a> = &'a (dyn Fn(&Item) -> bool + Sync);

impl ItemService {
    /// The caller's item, then `precondition` on it: [`Error::NotFound`] as
    /// for [`ItemService::get`], [`Error::PreconditionFailed`] when it does
    /// not hold.
    async fn checked(&self, user: &User, id: ItemId, precondition: Precondition<'_>) -> Result<Item, Error> {
        let current = self.find_owned(user, id).await?;
        if precondition(&current) {
            Ok(current)
        } else {
            Err(Error::PreconditionFailed)
        }
    }

    /// [`ItemService::update`] only if `precondition` holds for the item as
    /// stored; the write is conditional on the item not having changed since
    /// it was judged (its `updated_at`), in the same statement, so of
    /// concurrent updates judged on one state exactly one succeeds.
    ///
    /// # Errors
    /// [`Error::NotFound`], [`Error::PreconditionFailed`] (nothing changed), or storage errors.
    pub async fn update_if(
        &self,
        user: &User,
        raw_id: &str,
        patch: ItemPatch,
        precondition: Precondition<'_>,
    ) -> Result<Item, Error> {
        let id = ItemId::parse(raw_id).ok_or(Error::NotFound)?;
        let current = self.checked(user, id, precondition).await?;
        let changes = ItemChanges {
            patch,
            // Strictly later than the judged state, so that state can match
            // only one conditional write, even within one microsecond.
            updated_at: self
                .clock
                .now()
                .max(current.updated_at + chrono::Duration::microseconds(1)),
            unless_changed_since: Some(current.updated_at),
        };
        let item = self
            .repository
            .update(&user.id, id, &changes)
            .await?
            .filter(|item| item.owner_id == user.id)
            .ok_or(Error::PreconditionFailed)?;
        self.invalidate(&user.id).await;
        Ok(item)
    }

    /// [`ItemService::delete`] only if `precondition` holds, atomically as
    /// for [`ItemService::update_if`].
    ///
    /// # Errors
    /// [`Error::NotFound`], [`Error::PreconditionFailed`] (nothing deleted), or storage errors.
    pub async fn delete_if(&self, user: &User, raw_id: &str, precondition: Precondition<'_>) -> Result<(), Error> {
        let id = ItemId::parse(raw_id).ok_or(Error::NotFound)?;
        let current = self.checked(user, id, precondition).await?;
        if self
            .repository
            .delete_unchanged(&user.id, id, current.updated_at)
            .await?
        {
            self.invalidate(&user.id).await;
            Ok(())
        } else {
            Err(Error::PreconditionFailed)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cache::MockVersionedCache;
    use crate::clock::MockClock;
    use crate::item::model::{ItemDescription, ItemName};
    use crate::item::port::MockItemRepository;
    use chrono::{DateTime, TimeZone, Utc};

    fn now() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 3, 4, 5, 6, 7).unwrap()
    }

    fn user(id: &str) -> User {
        User {
            id: id.into(),
            email: format!("{id}@example.com"),
            name: id.into(),
            email_verified: false,
            image: None,
            created_at: now(),
            updated_at: now(),
        }
    }

    fn item(owner: &str) -> Item {
        Item {
            id: ItemId::generate(),
            name: ItemName::parse("thing").unwrap(),
            description: None,
            owner_id: owner.into(),
            is_active: true,
            created_at: now(),
            updated_at: now(),
        }
    }

    fn service(repository: MockItemRepository) -> ItemService {
        let mut clock = MockClock::new();
        clock.expect_now().returning(now);
        ItemService::new(Arc::new(repository), Arc::new(clock))
    }

    #[tokio::test]
    async fn create_assigns_owner_id_and_timestamps() {
        let mut repo = MockItemRepository::new();
        repo.expect_insert()
            .withf(|item| item.owner_id == "alice" && item.created_at == now() && item.updated_at == now())
            .times(1)
            .returning(|_| Ok(()));
        let new = NewItem {
            name: ItemName::parse(" Lamp ").unwrap(),
            description: Some(ItemDescription::parse("bright").unwrap()),
            is_active: true,
        };
        let created = service(repo).create(&user("alice"), new).await.unwrap();
        assert_eq!(created.owner_id, "alice");
        assert_eq!(created.name.as_str(), "Lamp");
    }

    #[tokio::test]
    async fn a_malformed_id_is_not_found_without_asking_storage() {
        let mut repo = MockItemRepository::new();
        repo.expect_find().never();
        repo.expect_update().never();
        repo.expect_delete().never();
        let service = service(repo);
        let alice = user("alice");
        assert!(matches!(service.get(&alice, "nope").await, Err(Error::NotFound)));
        assert!(matches!(
            service.update(&alice, "nope", ItemPatch::default()).await,
            Err(Error::NotFound)
        ));
        assert!(matches!(service.delete(&alice, "nope").await, Err(Error::NotFound)));
    }

    #[tokio::test]
    async fn another_users_item_is_not_found_even_if_storage_returns_it() {
        let mut repo = MockItemRepository::new();
        repo.expect_find()
            .withf(|owner, _| owner == "alice")
            .returning(|_, _| Ok(Some(item("mallory"))));
        repo.expect_update().returning(|_, _, _| Ok(Some(item("mallory"))));
        repo.expect_list()
            .returning(|_, _| Ok(vec![item("mallory"), item("alice")]));
        let service = service(repo);
        let alice = user("alice");
        let id = ItemId::generate().to_string();
        assert!(matches!(service.get(&alice, &id).await, Err(Error::NotFound)));
        assert!(matches!(
            service.update(&alice, &id, ItemPatch::default()).await,
            Err(Error::NotFound)
        ));
        let listed = service.list(&alice, Page::default()).await.unwrap();
        assert_eq!(listed.len(), 1);
        assert_eq!(listed[0].owner_id, "alice");
    }

    #[tokio::test]
    async fn update_stamps_updated_at_with_the_clock() {
        let mut repo = MockItemRepository::new();
        repo.expect_update()
            .withf(|owner, _, changes| {
                owner == "alice" && changes.updated_at == now() && changes.patch.is_active == Some(false)
            })
            .times(1)
            .returning(|_, _, _| Ok(Some(item("alice"))));
        let patch = ItemPatch {
            is_active: Some(false),
            ..ItemPatch::default()
        };
        service(repo)
            .update(&user("alice"), &ItemId::generate().to_string(), patch)
            .await
            .unwrap();
    }

    #[tokio::test]
    async fn deleting_a_missing_item_is_not_found() {
        let mut repo = MockItemRepository::new();
        repo.expect_delete().returning(|_, _| Ok(false));
        let err = service(repo)
            .delete(&user("alice"), &ItemId::generate().to_string())
            .await
            .unwrap_err();
        assert!(matches!(err, Error::NotFound));
    }

    fn render_names(items: Vec<Item>) -> Result<Vec<u8>, Error> {
        Ok(items
            .iter()
            .map(|i| i.name.as_str())
            .collect::<Vec<_>>()
            .join(",")
            .into_bytes())
    }

    fn cached(repository: MockItemRepository, cache: MockVersionedCache) -> ItemService {
        service(repository).with_view_cache(Arc::new(cache), Duration::from_secs(30))
    }

    #[tokio::test]
    async fn a_cached_view_is_served_without_asking_storage() {
        let mut repo = MockItemRepository::new();
        repo.expect_list().never();
        let mut cache = MockVersionedCache::new();
        cache
            .expect_get()
            .withf(|owner, key| owner == "alice" && key == "page:0:100")
            .returning(|_, _| {
                Ok((
                    3,
                    Some(frame(ListView {
                        body: b"cached".to_vec(),
                        next: None,
                    })),
                ))
            });
        let body = cached(repo, cache)
            .list_view(&user("alice"), Page::default(), &render_names)
            .await
            .unwrap();
        assert_eq!(body.body, b"cached");
    }

    #[tokio::test]
    async fn a_miss_renders_and_stores_under_the_version_it_saw() {
        let mut repo = MockItemRepository::new();
        repo.expect_list().returning(|_, _| Ok(vec![item("alice")]));
        let mut cache = MockVersionedCache::new();
        cache.expect_get().returning(|_, _| Ok((7, None)));
        cache
            .expect_put()
            .withf(|owner, version, key, body, _| {
                owner == "alice" && *version == 7 && key == "page:0:100" && body[1..] == *b"thing"
            })
            .times(1)
            .returning(|_, _, _, _, _| Ok(()));
        let body = cached(repo, cache)
            .list_view(&user("alice"), Page::default(), &render_names)
            .await
            .unwrap();
        assert_eq!(body.body, b"thing");
    }

    #[tokio::test]
    async fn every_write_invalidates_the_writers_views_and_failures_do_not_fail_it() {
        let mut repo = MockItemRepository::new();
        repo.expect_insert().returning(|_| Ok(()));
        repo.expect_update().returning(|_, _, _| Ok(Some(item("alice"))));
        repo.expect_delete().returning(|_, _| Ok(true));
        let mut cache = MockVersionedCache::new();
        cache
            .expect_invalidate()
            .withf(|owner| owner == "alice")
            .times(3)
            .returning(|_| Err(Error::Unavailable(anyhow::anyhow!("redis down"))));
        let service = cached(repo, cache);
        let alice = user("alice");
        let new = NewItem {
            name: ItemName::parse("x").unwrap(),
            description: None,
            is_active: true,
        };
        service.create(&alice, new).await.unwrap();
        let id = ItemId::generate().to_string();
        service.update(&alice, &id, ItemPatch::default()).await.unwrap();
        service.delete(&alice, &id).await.unwrap();
    }

    #[tokio::test]
    async fn a_failed_write_or_a_missing_item_is_not_cached_and_invalidates_nothing() {
        let mut repo = MockItemRepository::new();
        repo.expect_find().returning(|_, _| Ok(None));
        repo.expect_delete().returning(|_, _| Ok(false));
        let mut cache = MockVersionedCache::new();
        cache.expect_get().returning(|_, _| Ok((1, None)));
        cache.expect_put().never();
        cache.expect_invalidate().never();
        let service = cached(repo, cache);
        let alice = user("alice");
        let id = ItemId::generate().to_string();
        let render = |item: Item| Ok(item.name.as_str().as_bytes().to_vec());
        assert!(matches!(
            service.get_view(&alice, &id, &render).await,
            Err(Error::NotFound)
        ));
        assert!(matches!(service.delete(&alice, &id).await, Err(Error::NotFound)));
    }

    #[tokio::test]
    async fn an_unreachable_cache_is_bypassed() {
        let mut repo = MockItemRepository::new();
        repo.expect_list().returning(|_, _| Ok(vec![item("alice")]));
        let mut cache = MockVersionedCache::new();
        cache
            .expect_get()
            .returning(|_, _| Err(Error::Unavailable(anyhow::anyhow!("redis down"))));
        cache.expect_put().never();
        let body = cached(repo, cache)
            .list_view(&user("alice"), Page::default(), &render_names)
            .await
            .unwrap();
        assert_eq!(body.body, b"thing");
    }

    #[tokio::test]
    async fn a_precondition_that_fails_changes_nothing() {
        let mut repo = MockItemRepository::new();
        repo.expect_find().returning(|_, _| Ok(Some(item("alice"))));
        repo.expect_update().never();
        repo.expect_delete_unchanged().never();
        let service = service(repo);
        let alice = user("alice");
        let id = ItemId::generate().to_string();
        let never = |_: &Item| false;
        assert!(matches!(
            service.update_if(&alice, &id, ItemPatch::default(), &never).await,
            Err(Error::PreconditionFailed)
        ));
        assert!(matches!(
            service.delete_if(&alice, &id, &never).await,
            Err(Error::PreconditionFailed)
        ));
    }

    #[tokio::test]
    async fn a_conditional_write_is_conditional_on_the_state_it_judged() {
        let stored = item("alice");
        let judged_at = stored.updated_at;
        let mut repo = MockItemRepository::new();
        repo.expect_find().returning(move |_, _| Ok(Some(stored.clone())));
        repo.expect_update()
            .withf(move |_, _, changes| changes.unless_changed_since == Some(judged_at))
            .times(1)
            .returning(|_, _, _| Ok(None)); // someone else changed it meanwhile
        repo.expect_delete_unchanged()
            .withf(move |_, _, at| *at == judged_at)
            .times(1)
            .returning(|_, _, _| Ok(true));
        let service = service(repo);
        let alice = user("alice");
        let id = ItemId::generate().to_string();
        let always = |_: &Item| true;
        assert!(matches!(
            service.update_if(&alice, &id, ItemPatch::default(), &always).await,
            Err(Error::PreconditionFailed)
        ));
        service.delete_if(&alice, &id, &always).await.unwrap();
    }

    #[tokio::test]
    async fn a_precondition_on_a_missing_or_foreign_item_is_not_found() {
        let mut repo = MockItemRepository::new();
        repo.expect_find().returning(|_, _| Ok(Some(item("mallory"))));
        let service = service(repo);
        let always = |_: &Item| true;
        let id = ItemId::generate().to_string();
        assert!(matches!(
            service.delete_if(&user("alice"), &id, &always).await,
            Err(Error::NotFound)
        ));
    }

    #[tokio::test]
    async fn a_full_page_says_where_the_next_one_starts_and_the_last_does_not() {
        let mut repo = MockItemRepository::new();
        // Storage is asked for one more than the page size; it has three.
        repo.expect_list()
            .withf(|_, page| page.limit() == 3 || page.limit() == 6)
            .returning(|_, _| Ok(vec![item("alice"), item("alice"), item("alice")]));
        let service = service(repo);
        let page = Page::new(None, Some(2)).unwrap();
        let (items, next) = service.list_page(&user("alice"), page).await.unwrap();
        assert_eq!(items.len(), 2);
        assert_eq!(next, Some(Position::after(&items[1])));
        let page = Page::new(None, Some(5)).unwrap();
        let (items, next) = service.list_page(&user("alice"), page).await.unwrap();
        assert_eq!((items.len(), next), (3, None));
    }

    #[test]
    fn cached_list_pages_keep_their_next_position() {
        let next = Position::after(&item("alice"));
        for view in [
            ListView {
                body: b"[1]".to_vec(),
                next: Some(next),
            },
            ListView {
                body: b"[]".to_vec(),
                next: None,
            },
        ] {
            assert_eq!(unframe(frame(view.clone())).unwrap(), view);
        }
        assert!(
            unframe(b"[]".to_vec()).is_err(),
            "an unframed body is not taken for a page"
        );
    }

    #[tokio::test]
    async fn storage_outages_propagate_as_unavailable() {
        let mut repo = MockItemRepository::new();
        repo.expect_list()
            .returning(|_, _| Err(Error::Unavailable(anyhow::anyhow!("down"))));
        let err = service(repo).list(&user("alice"), Page::default()).await.unwrap_err();
        assert!(matches!(err, Error::Unavailable(_)));
    }
}
