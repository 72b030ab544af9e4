//! Item use cases: ownership, timestamps and ids are decided here, not by the
//! client and not by storage.
//!
//! Reads can also be answered as a rendered *view* (the bytes a client gets)
//! when a [`VersionedCache`] is attached. Every write of the service makes
//! the views it changes unreachable before it returns, so a caller cannot
//! forget to invalidate, and the next read — by the writer or by any other
//! member of the organization — sees the write:
//!
//! - list pages are cached per scope (the caller's personal items, or one
//!   organization's, see [`Caller::namespace`]); every write in the scope
//!   invalidates them;
//! - one item's view is cached in that item's own namespace
//!   (`i:<item id>`), under the scope that read it; only a change or
//!   deletion of *that* item invalidates it. A create changes no existing
//!   item, so under a write-heavy load (every user creating every second or
//!   so) item views stay cached where list pages cannot.
//!
//! Only successful reads are cached (a missing item always asks storage). A
//! cache that fails is bypassed: the read goes to storage, the write still
//! succeeds (the cache adapter retries its invalidation and logs, throttled).

use std::sync::Arc;
use std::time::Duration;

use super::model::{Item, ItemChanges, ItemId, ItemPatch, NewItem, Page, Position};
use super::port::ItemRepository;
use crate::cache::VersionedCache;
use crate::clock::Clock;
use crate::error::{Error, Forbidden};
use crate::scope::{Caller, Scope};

/// The item use cases for a signed-in user in a scope ([`Caller`]).
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

/// A cached list view: the body, then a trailer — `0`, or µs (8 bytes) +
/// id (16 bytes) + `1` — so that framing and unframing only append and
/// truncate (a page is kilobytes; nothing is copied or shifted).
fn frame(view: ListView) -> Vec<u8> {
    let mut framed = view.body;
    match view.next {
        None => framed.push(0),
        Some(next) => {
            framed.reserve(25);
            framed.extend_from_slice(&next.created_at.timestamp_micros().to_be_bytes());
            framed.extend_from_slice(next.id.as_uuid().as_bytes());
            framed.push(1);
        }
    }
    framed
}

fn unframe(mut framed: Vec<u8>) -> Result<ListView, Error> {
    let corrupt = || Error::Unexpected(anyhow::anyhow!("malformed cached list page"));
    let next = match framed.pop() {
        Some(0) => None,
        Some(1) if framed.len() >= 24 => {
            let at = framed.len() - 24;
            let micros = i64::from_be_bytes(framed[at..at + 8].try_into().map_err(|_| corrupt())?);
            let id = uuid::Uuid::from_slice(&framed[at + 8..]).map_err(|_| corrupt())?;
            let created_at = chrono::DateTime::from_timestamp_micros(micros).ok_or_else(corrupt)?;
            framed.truncate(at);
            Some(Position {
                created_at,
                id: ItemId::from(id),
            })
        }
        _ => return Err(corrupt()),
    };
    Ok(ListView { body: framed, next })
}

/// The namespace of one item's cached views: its own, so that only a write
/// to that item invalidates them. (`i:` cannot begin a scope's namespace,
/// which is `u:` or `o:`.) The key inside it is the reader's scope, so a
/// view is only ever served to the scope it was read in.
fn item_namespace(id: ItemId) -> String {
    format!("i:{}", id.as_uuid())
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

    /// After a create: the scope's list pages must not be served again.
    async fn invalidate_lists(&self, caller: &Caller) {
        if let Some(views) = &self.views {
            let _ = views.cache.invalidate(&caller.namespace()).await;
        }
    }

    /// After a change or deletion of item `id`: the scope's list pages and
    /// the item's own views must not be served again (both bumped at once).
    async fn invalidate_item(&self, caller: &Caller, id: ItemId) {
        if let Some(views) = &self.views {
            let (lists, item) = (caller.namespace(), item_namespace(id));
            let _ = futures_util::join!(views.cache.invalidate(&lists), views.cache.invalidate(&item));
        }
    }

    /// [`ItemService::list`], rendered, from the view cache when it holds it.
    ///
    /// # Errors
    /// As [`ItemService::list`], or what `render` returns.
    pub async fn list_view(
        &self,
        caller: &Caller,
        page: Page,
        render: Render<'_, Vec<Item>>,
    ) -> Result<ListView, Error> {
        permitted(caller, "read")?;
        let framed = self
            .view(
                &caller.namespace(),
                list_key(page),
                &|(items, next): (Vec<Item>, Option<Position>)| {
                    Ok(frame(ListView {
                        body: render(items)?,
                        next,
                    }))
                },
                self.list_page(caller, page),
            )
            .await?;
        unframe(framed)
    }

    /// A page of the caller's items and the position after it when more follow.
    ///
    /// # Errors
    /// Storage errors.
    pub async fn list_page(&self, caller: &Caller, page: Page) -> Result<(Vec<Item>, Option<Position>), Error> {
        let mut items = self.list(caller, page.with_one_more()).await?;
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
    pub async fn get_view(&self, caller: &Caller, raw_id: &str, render: Render<'_, Item>) -> Result<Vec<u8>, Error> {
        permitted(caller, "read")?;
        let id = ItemId::parse(raw_id).ok_or(Error::NotFound)?;
        self.view(
            &item_namespace(id),
            caller.namespace(),
            render,
            self.get(caller, raw_id),
        )
        .await
    }

    /// The items of the caller's scope, newest first.
    ///
    /// # Errors
    /// Storage errors, as the repository reports them.
    pub async fn list(&self, caller: &Caller, page: Page) -> Result<Vec<Item>, Error> {
        permitted(caller, "read")?;
        let mut items = self.repository.list(&caller.owner(), page).await?;
        items.retain(|item| visible(caller, item));
        Ok(items)
    }

    /// One item of the caller's scope. An id that is not a UUID, a missing
    /// item and an item of another user or scope are all [`Error::NotFound`].
    ///
    /// # Errors
    /// [`Error::NotFound`], or storage errors.
    pub async fn get(&self, caller: &Caller, raw_id: &str) -> Result<Item, Error> {
        permitted(caller, "read")?;
        let id = ItemId::parse(raw_id).ok_or(Error::NotFound)?;
        self.find_visible(caller, id).await
    }

    /// Item `id` of the caller's scope; a missing or foreign one is [`Error::NotFound`].
    async fn find_visible(&self, caller: &Caller, id: ItemId) -> Result<Item, Error> {
        self.repository
            .find(&caller.owner(), id)
            .await?
            .filter(|item| visible(caller, item))
            .ok_or(Error::NotFound)
    }

    /// Before a change in an organization by a member who manages nothing:
    /// the item must exist there ([`Error::NotFound`]) and be theirs
    /// ([`Error::Forbidden`]). Creators never change, so the check cannot go
    /// stale before the write. Personal items and managers need no lookup.
    async fn ensure_may_change(&self, caller: &Caller, id: ItemId) -> Result<(), Error> {
        if let Scope::Organization { roles, .. } = &caller.scope
            && !roles.manages_all_records()
        {
            let item = self.find_visible(caller, id).await?;
            if !caller.may_change(&item.owner_id) {
                return Err(Error::Forbidden(Forbidden::NotAllowedToChange));
            }
        }
        Ok(())
    }

    /// Creates an item in the caller's scope, created by the caller, with a
    /// fresh id and timestamps.
    ///
    /// # Errors
    /// Storage errors.
    pub async fn create(&self, caller: &Caller, new: NewItem) -> Result<Item, Error> {
        permitted(caller, "create")?;
        let now = self.clock.now();
        let item = Item {
            id: ItemId::generate(),
            name: new.name,
            description: new.description,
            owner_id: caller.user.id.clone(),
            organization_id: caller.organization_id().map(ToString::to_string),
            is_active: new.is_active,
            created_at: now,
            updated_at: now,
        };
        self.repository.insert(&item).await?;
        self.invalidate_lists(caller).await;
        Ok(item)
    }

    /// Applies a partial update to an item of the caller's scope and moves its `updated_at`.
    ///
    /// # Errors
    /// [`Error::NotFound`] as for [`ItemService::get`], [`Error::Forbidden`]
    /// for another member's item without the right role, or storage errors.
    pub async fn update(&self, caller: &Caller, raw_id: &str, patch: ItemPatch) -> Result<Item, Error> {
        permitted(caller, "update")?;
        let id = ItemId::parse(raw_id).ok_or(Error::NotFound)?;
        self.ensure_may_change(caller, id).await?;
        let changes = ItemChanges {
            patch,
            updated_at: self.clock.now(),
            unless_changed_since: None,
        };
        let item = self
            .repository
            .update(&caller.owner(), id, &changes)
            .await?
            .filter(|item| visible(caller, item))
            .ok_or(Error::NotFound)?;
        self.invalidate_item(caller, id).await;
        Ok(item)
    }

    /// Deletes an item of the caller's scope.
    ///
    /// # Errors
    /// As [`ItemService::update`].
    pub async fn delete(&self, caller: &Caller, raw_id: &str) -> Result<(), Error> {
        permitted(caller, "delete")?;
        let id = ItemId::parse(raw_id).ok_or(Error::NotFound)?;
        self.ensure_may_change(caller, id).await?;
        if self.repository.delete(&caller.owner(), id).await? {
            self.invalidate_item(caller, id).await;
            Ok(())
        } else {
            Err(Error::NotFound)
        }
    }
}

/// The resource name API-key permissions use for items.
const RESOURCE: &str = "items";

/// [`Error::Forbidden`] unless the caller's credential allows `action` on items.
fn permitted(caller: &Caller, action: &str) -> Result<(), Error> {
    if caller.may(RESOURCE, action) {
        Ok(())
    } else {
        Err(Error::Forbidden(Forbidden::MissingPermission))
    }
}

/// Whether `item` belongs to the caller's scope (storage is asked for that
/// scope only; this is the domain's own guard).
fn visible(caller: &Caller, item: &Item) -> bool {
    match &caller.scope {
        Scope::Personal => item.owner_id == caller.user.id && item.organization_id.is_none(),
        Scope::Organization { id, .. } => item.organization_id.as_deref() == Some(id.as_str()),
    }
}

/// A client's condition on an item's current state (HTTP `If-Match`),
/// judged on the item as stored.
pub type Precondition<'a> = &'a (dyn Fn(&Item) -> bool + Sync);

impl ItemService {
    /// The item of the caller's scope, then their right to change it, then
    /// `precondition` on it: [`Error::NotFound`] as for [`ItemService::get`],
    /// [`Error::Forbidden`] as for [`ItemService::update`],
    /// [`Error::PreconditionFailed`] when it does not hold.
    async fn checked(&self, caller: &Caller, id: ItemId, precondition: Precondition<'_>) -> Result<Item, Error> {
        let current = self.find_visible(caller, id).await?;
        if !caller.may_change(&current.owner_id) {
            return Err(Error::Forbidden(Forbidden::NotAllowedToChange));
        }
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
        caller: &Caller,
        raw_id: &str,
        patch: ItemPatch,
        precondition: Precondition<'_>,
    ) -> Result<Item, Error> {
        permitted(caller, "update")?;
        let id = ItemId::parse(raw_id).ok_or(Error::NotFound)?;
        let current = self.checked(caller, id, precondition).await?;
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
            .update(&caller.owner(), id, &changes)
            .await?
            .filter(|item| visible(caller, item))
            .ok_or(Error::PreconditionFailed)?;
        self.invalidate_item(caller, id).await;
        Ok(item)
    }

    /// [`ItemService::delete`] only if `precondition` holds, atomically as
    /// for [`ItemService::update_if`].
    ///
    /// # Errors
    /// [`Error::NotFound`], [`Error::PreconditionFailed`] (nothing deleted), or storage errors.
    pub async fn delete_if(&self, caller: &Caller, raw_id: &str, precondition: Precondition<'_>) -> Result<(), Error> {
        permitted(caller, "delete")?;
        let id = ItemId::parse(raw_id).ok_or(Error::NotFound)?;
        let current = self.checked(caller, id, precondition).await?;
        if self
            .repository
            .delete_unchanged(&caller.owner(), id, current.updated_at)
            .await?
        {
            self.invalidate_item(caller, id).await;
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
    use crate::scope::{OrganizationId, Owner, Roles};
    use crate::user::User;
    use chrono::{DateTime, TimeZone, Utc};

    fn now() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 3, 4, 5, 6, 7).unwrap()
    }

    fn user(id: &str) -> Caller {
        Caller::personal(User {
            id: id.into(),
            email: format!("{id}@example.com"),
            name: id.into(),
            email_verified: false,
            image: None,
            created_at: now(),
            updated_at: now(),
        })
    }

    fn item(owner: &str) -> Item {
        Item {
            id: ItemId::generate(),
            name: ItemName::parse("thing").unwrap(),
            description: None,
            owner_id: owner.into(),
            organization_id: None,
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

    fn member(id: &str, roles: &str) -> Caller {
        Caller {
            scope: Scope::Organization {
                id: OrganizationId::parse("acme").unwrap(),
                roles: Roles::new(roles),
            },
            ..user(id)
        }
    }

    fn org_item(creator: &str) -> Item {
        Item {
            organization_id: Some("acme".into()),
            ..item(creator)
        }
    }

    #[tokio::test]
    async fn in_an_organization_members_read_every_item_and_create_as_themselves() {
        let mut repo = MockItemRepository::new();
        repo.expect_list()
            .withf(|owner, _| *owner == Owner::Organization("acme".into()))
            .returning(|_, _| Ok(vec![org_item("alice"), org_item("bob"), item("bob")]));
        repo.expect_insert()
            .withf(|item| item.owner_id == "carol" && item.organization_id.as_deref() == Some("acme"))
            .times(1)
            .returning(|_| Ok(()));
        let service = service(repo);
        let carol = member("carol", "member");
        let listed = service.list(&carol, Page::new(None, None).unwrap()).await.unwrap();
        assert_eq!(
            listed.len(),
            2,
            "a personal item storage returned by mistake is dropped"
        );
        let new = NewItem {
            name: ItemName::parse("shared").unwrap(),
            description: None,
            is_active: true,
        };
        let created = service.create(&carol, new).await.unwrap();
        assert_eq!(created.organization_id.as_deref(), Some("acme"));
    }

    #[tokio::test]
    async fn a_member_changes_their_own_items_but_not_another_members() {
        let own = org_item("carol");
        let others = org_item("bob");
        let (own_id, others_id) = (own.id, others.id);
        let mut repo = MockItemRepository::new();
        repo.expect_find()
            .withf(move |_, id| *id == own_id)
            .returning(move |_, _| Ok(Some(own.clone())));
        repo.expect_find()
            .withf(move |_, id| *id == others_id)
            .returning(move |_, _| Ok(Some(others.clone())));
        repo.expect_update()
            .withf(move |owner, id, _| *owner == Owner::Organization("acme".into()) && *id == own_id)
            .times(1)
            .returning(|_, _, _| Ok(Some(org_item("carol"))));
        repo.expect_delete().never();
        let service = service(repo);
        let carol = member("carol", "member,viewer");
        assert!(
            service
                .update(&carol, &own_id.to_string(), ItemPatch::default())
                .await
                .is_ok()
        );
        for refused in [
            service
                .update(&carol, &others_id.to_string(), ItemPatch::default())
                .await
                .unwrap_err(),
            service.delete(&carol, &others_id.to_string()).await.unwrap_err(),
            service
                .delete_if(&carol, &others_id.to_string(), &|_| true)
                .await
                .unwrap_err(),
        ] {
            assert!(
                matches!(refused, Error::Forbidden(Forbidden::NotAllowedToChange)),
                "{refused:?}"
            );
        }
        let superadmin = member("sam", "superadmin");
        let refused = service.delete(&superadmin, &others_id.to_string()).await.unwrap_err();
        assert!(
            matches!(refused, Error::Forbidden(_)),
            "superadmin is not admin: {refused:?}"
        );
    }

    #[tokio::test]
    async fn owners_and_admins_change_any_item_without_a_lookup() {
        let mut repo = MockItemRepository::new();
        repo.expect_find().never();
        repo.expect_delete()
            .withf(|owner, _| *owner == Owner::Organization("acme".into()))
            .times(2)
            .returning(|_, _| Ok(true));
        let service = service(repo);
        let id = ItemId::generate().to_string();
        service.delete(&member("ann", "admin,member"), &id).await.unwrap();
        service.delete(&member("oz", "owner"), &id).await.unwrap();
    }

    #[tokio::test]
    async fn an_item_of_another_scope_is_not_found_in_this_one() {
        let mut repo = MockItemRepository::new();
        let personal = item("carol");
        let elsewhere = Item {
            organization_id: Some("other".into()),
            ..item("carol")
        };
        let (personal_id, elsewhere_id) = (personal.id, elsewhere.id);
        repo.expect_find()
            .withf(move |_, id| *id == personal_id)
            .returning(move |_, _| Ok(Some(personal.clone())));
        repo.expect_find()
            .withf(move |_, id| *id == elsewhere_id)
            .returning(move |_, _| Ok(Some(elsewhere.clone())));
        let service = service(repo);
        let carol = member("carol", "member");
        for id in [personal_id, elsewhere_id] {
            let missing = service.get(&carol, &id.to_string()).await.unwrap_err();
            assert!(matches!(missing, Error::NotFound), "{missing:?}");
            let missing = service
                .update(&carol, &id.to_string(), ItemPatch::default())
                .await
                .unwrap_err();
            assert!(matches!(missing, Error::NotFound), "404 before 403: {missing:?}");
        }
        let in_org = Item {
            organization_id: Some("acme".into()),
            ..item("carol")
        };
        assert!(
            !super::visible(&user("carol"), &in_org),
            "an organization's item is not in its creator's personal scope"
        );
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
            .withf(|owner, _| *owner == Owner::User("alice".into()))
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
                *owner == Owner::User("alice".into())
                    && changes.updated_at == now()
                    && changes.patch.is_active == Some(false)
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
            .withf(|namespace, key| namespace == "u:alice" && key == "page:0:100")
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
                owner == "u:alice" && *version == 7 && key == "page:0:100" && body[..] == *b"thing\0"
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
    async fn every_write_invalidates_the_views_it_changes_and_failures_do_not_fail_it() {
        let mut repo = MockItemRepository::new();
        repo.expect_insert().returning(|_| Ok(()));
        repo.expect_update().returning(|_, _, _| Ok(Some(item("alice"))));
        repo.expect_delete().returning(|_, _| Ok(true));
        let invalidated = Arc::new(std::sync::Mutex::new(Vec::new()));
        let mut cache = MockVersionedCache::new();
        let seen = invalidated.clone();
        cache.expect_invalidate().returning(move |namespace| {
            seen.lock().unwrap().push(namespace.to_owned());
            Err(Error::Unavailable(anyhow::anyhow!("redis down")))
        });
        let service = cached(repo, cache);
        let alice = user("alice");
        let new = NewItem {
            name: ItemName::parse("x").unwrap(),
            description: None,
            is_active: true,
        };
        service.create(&alice, new).await.unwrap();
        assert_eq!(
            *invalidated.lock().unwrap(),
            ["u:alice"],
            "a create changes the scope's lists and no existing item"
        );
        let id = ItemId::generate();
        service
            .update(&alice, &id.to_string(), ItemPatch::default())
            .await
            .unwrap();
        service.delete(&alice, &id.to_string()).await.unwrap();
        let mut after_create = invalidated.lock().unwrap().split_off(1);
        after_create.sort();
        let item_namespace = format!("i:{}", id.as_uuid());
        assert_eq!(
            after_create,
            [
                item_namespace.clone(),
                item_namespace,
                "u:alice".to_owned(),
                "u:alice".to_owned()
            ],
            "a change or deletion invalidates the lists and that item's views"
        );
    }

    #[tokio::test]
    async fn an_item_view_is_cached_in_the_items_namespace_under_the_readers_scope() {
        let mut repo = MockItemRepository::new();
        repo.expect_find().times(1).returning(|_, _| Ok(Some(item("alice"))));
        let id = ItemId::generate();
        let namespace = format!("i:{}", id.as_uuid());
        let mut cache = MockVersionedCache::new();
        let expected = namespace.clone();
        cache
            .expect_get()
            .withf(move |ns, key| *ns == expected && key == "u:alice")
            .times(1)
            .returning(|_, _| Ok((4, None)));
        cache
            .expect_put()
            .withf(move |ns, version, key, body, _| {
                *ns == namespace && *version == 4 && key == "u:alice" && body == b"thing"
            })
            .times(1)
            .returning(|_, _, _, _, _| Ok(()));
        let render = |item: Item| Ok(item.name.as_str().as_bytes().to_vec());
        let body = cached(repo, cache)
            .get_view(&user("alice"), &id.to_string(), &render)
            .await
            .unwrap();
        assert_eq!(body, b"thing");
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
