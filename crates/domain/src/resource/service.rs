//! The use cases of a scoped resource, for any [`Record`]: ownership,
//! timestamps and ids are decided here, not by the client and not by storage.
//!
//! Every successful write is reported to the [`ChangeObserver`] (when one is
//! attached) before the service returns: a create as a change of the
//! caller's scope, an update or deletion as a change of that record in it.
//! What derives from the records (the api's response cache) stays in step
//! without the service knowing it exists; a failed write or a missing record
//! reports nothing.

use std::sync::Arc;

use super::{Changes, Id, Origin, Record, RecordPage, RecordPosition, ScopedRepository};
use crate::change::{Change, ChangeObserver};
use crate::clock::Clock;
use crate::error::{Error, Forbidden};
use crate::scope::{Caller, Scope};

/// The use cases of resource `R` for a signed-in user in a scope ([`Caller`]).
pub struct ScopedService<R: Record> {
    repository: Arc<dyn ScopedRepository<R>>,
    clock: Arc<dyn Clock>,
    observer: Option<Arc<dyn ChangeObserver>>,
}

impl<R: Record> ScopedService<R> {
    /// Wires the service to its ports.
    pub fn new(repository: Arc<dyn ScopedRepository<R>>, clock: Arc<dyn Clock>) -> Self {
        Self {
            repository,
            clock,
            observer: None,
        }
    }

    /// Reports every successful write to `observer` (see the module docs).
    #[must_use]
    pub fn with_change_observer(mut self, observer: Arc<dyn ChangeObserver>) -> Self {
        self.observer = Some(observer);
        self
    }

    async fn report(&self, change: Change) {
        if let Some(observer) = &self.observer {
            observer.changed(&change).await;
        }
    }

    /// A page of the caller's records and the position after it when more follow.
    ///
    /// # Errors
    /// Storage errors.
    pub async fn list_page(
        &self,
        caller: &Caller,
        page: RecordPage<R>,
    ) -> Result<(Vec<R>, Option<RecordPosition<R>>), Error> {
        let mut records = self.list(caller, page.clone().with_one_more()).await?;
        let limit = usize::try_from(page.limit()).unwrap_or(usize::MAX);
        if records.len() <= limit {
            return Ok((records, None));
        }
        records.truncate(limit);
        let sort = page.query().sort;
        let next = records.last().map(|last| RecordPosition::<R>::after(last, sort));
        Ok((records, next))
    }

    /// The records of the caller's scope, newest first.
    ///
    /// # Errors
    /// Storage errors, as the repository reports them.
    pub async fn list(&self, caller: &Caller, page: RecordPage<R>) -> Result<Vec<R>, Error> {
        permitted::<R>(caller, "read")?;
        let mut records = self.repository.list(&caller.owner(), page).await?;
        records.retain(|record| visible(caller, record));
        Ok(records)
    }

    /// One record of the caller's scope. An id that is not a UUID, a missing
    /// record and a record of another user or scope are all [`Error::NotFound`].
    ///
    /// # Errors
    /// [`Error::NotFound`], or storage errors.
    pub async fn get(&self, caller: &Caller, raw_id: &str) -> Result<R, Error> {
        permitted::<R>(caller, "read")?;
        let id = Id::parse(raw_id).ok_or(Error::NotFound)?;
        self.find_visible(caller, id).await
    }

    /// Record `id` of the caller's scope; a missing or foreign one is [`Error::NotFound`].
    async fn find_visible(&self, caller: &Caller, id: Id<R>) -> Result<R, Error> {
        self.repository
            .find(&caller.owner(), id)
            .await?
            .filter(|record| visible(caller, record))
            .ok_or(Error::NotFound)
    }

    /// Before a change in an organization by a member who manages nothing:
    /// the record must exist there ([`Error::NotFound`]) and be theirs
    /// ([`Error::Forbidden`]). Creators never change, so the check cannot go
    /// stale before the write. Personal records and managers need no lookup.
    async fn ensure_may_change(&self, caller: &Caller, id: Id<R>) -> Result<(), Error> {
        if let Scope::Organization { roles, .. } = &caller.scope
            && !roles.manages_all_records()
        {
            let record = self.find_visible(caller, id).await?;
            if !caller.may_change(record.owner_id()) {
                return Err(Error::Forbidden(Forbidden::NotAllowedToChange));
            }
        }
        Ok(())
    }

    /// Creates a record in the caller's scope, created by the caller, with a
    /// fresh id and timestamps.
    ///
    /// # Errors
    /// Storage errors.
    pub async fn create(&self, caller: &Caller, new: R::New) -> Result<R, Error> {
        permitted::<R>(caller, "create")?;
        let origin = Origin {
            id: Id::generate(),
            owner_id: caller.user.id.clone(),
            organization_id: caller.organization_id().map(ToString::to_string),
            at: self.clock.now(),
        };
        let record = R::create(new, origin);
        self.repository.insert(&record).await?;
        self.report(Change::created(R::RESOURCE, caller)).await;
        Ok(record)
    }

    /// Applies a partial update to a record of the caller's scope and moves its `updated_at`.
    ///
    /// # Errors
    /// [`Error::NotFound`] as for [`ScopedService::get`], [`Error::Forbidden`]
    /// for another member's record without the right role, or storage errors.
    pub async fn update(&self, caller: &Caller, raw_id: &str, patch: R::Patch) -> Result<R, Error> {
        permitted::<R>(caller, "update")?;
        let id = Id::parse(raw_id).ok_or(Error::NotFound)?;
        self.ensure_may_change(caller, id).await?;
        let changes = Changes {
            patch,
            updated_at: self.clock.now(),
            unless_changed_since: None,
        };
        self.write(caller, id, &changes, Error::NotFound).await
    }

    /// Deletes a record of the caller's scope.
    ///
    /// # Errors
    /// As [`ScopedService::update`].
    pub async fn delete(&self, caller: &Caller, raw_id: &str) -> Result<(), Error> {
        permitted::<R>(caller, "delete")?;
        let id = Id::parse(raw_id).ok_or(Error::NotFound)?;
        self.ensure_may_change(caller, id).await?;
        if self.repository.delete(&caller.owner(), id).await? {
            self.report(Change::changed(R::RESOURCE, caller, id)).await;
            Ok(())
        } else {
            Err(Error::NotFound)
        }
    }
}

/// [`Error::Forbidden`] unless the caller's credential allows `action` on `R`.
fn permitted<R: Record>(caller: &Caller, action: &str) -> Result<(), Error> {
    caller.permit(R::RESOURCE, action)
}

/// Whether `record` belongs to the caller's scope (storage is asked for that
/// scope only; this is the domain's own guard).
fn visible<R: Record>(caller: &Caller, record: &R) -> bool {
    match &caller.scope {
        Scope::Personal => record.owner_id() == caller.user.id && record.organization_id().is_none(),
        Scope::Organization { id, .. } => record.organization_id() == Some(id.as_str()),
    }
}

/// A client's condition on a record's current state (HTTP `If-Match`),
/// judged on the record as stored.
pub type Precondition<'a, R> = &'a (dyn Fn(&R) -> bool + Sync);

impl<R: Record> ScopedService<R> {
    /// The record of the caller's scope, then their right to change it, then
    /// `precondition` on it: [`Error::NotFound`] as for [`ScopedService::get`],
    /// [`Error::Forbidden`] as for [`ScopedService::update`],
    /// [`Error::PreconditionFailed`] when it does not hold.
    async fn checked(&self, caller: &Caller, id: Id<R>, precondition: Precondition<'_, R>) -> Result<R, Error> {
        let current = self.find_visible(caller, id).await?;
        if !caller.may_change(current.owner_id()) {
            return Err(Error::Forbidden(Forbidden::NotAllowedToChange));
        }
        if precondition(&current) {
            Ok(current)
        } else {
            Err(Error::PreconditionFailed)
        }
    }

    /// [`ScopedService::update`] only if `precondition` holds for the record as
    /// stored; the write is conditional on the record not having changed since
    /// it was judged (its `updated_at`), in the same statement, so of
    /// concurrent updates judged on one state exactly one succeeds.
    ///
    /// # Errors
    /// [`Error::NotFound`], [`Error::PreconditionFailed`] (nothing changed), or storage errors.
    pub async fn update_if(
        &self,
        caller: &Caller,
        raw_id: &str,
        patch: R::Patch,
        precondition: Precondition<'_, R>,
    ) -> Result<R, Error> {
        permitted::<R>(caller, "update")?;
        let id = Id::parse(raw_id).ok_or(Error::NotFound)?;
        let current = self.checked(caller, id, precondition).await?;
        let changes = Changes {
            patch,
            // Strictly later than the judged state, so that state can match
            // only one conditional write, even within one microsecond.
            updated_at: self
                .clock
                .now()
                .max(current.updated_at() + chrono::Duration::microseconds(1)),
            unless_changed_since: Some(current.updated_at()),
        };
        self.write(caller, id, &changes, Error::PreconditionFailed).await
    }

    /// Applies `changes` to record `id` of the caller's scope and reports
    /// it; `missing` when storage finds no such record (or, conditionally,
    /// one that has changed since it was judged).
    async fn write(&self, caller: &Caller, id: Id<R>, changes: &Changes<R::Patch>, missing: Error) -> Result<R, Error> {
        let record = self
            .repository
            .update(&caller.owner(), id, changes)
            .await?
            .filter(|record| visible(caller, record))
            .ok_or(missing)?;
        self.report(Change::changed(R::RESOURCE, caller, id)).await;
        Ok(record)
    }

    /// [`ScopedService::delete`] only if `precondition` holds, atomically as
    /// for [`ScopedService::update_if`].
    ///
    /// # Errors
    /// [`Error::NotFound`], [`Error::PreconditionFailed`] (nothing deleted), or storage errors.
    pub async fn delete_if(
        &self,
        caller: &Caller,
        raw_id: &str,
        precondition: Precondition<'_, R>,
    ) -> Result<(), Error> {
        permitted::<R>(caller, "delete")?;
        let id = Id::parse(raw_id).ok_or(Error::NotFound)?;
        let current = self.checked(caller, id, precondition).await?;
        if self
            .repository
            .delete_unchanged(&caller.owner(), id, current.updated_at())
            .await?
        {
            self.report(Change::changed(R::RESOURCE, caller, id)).await;
            Ok(())
        } else {
            Err(Error::PreconditionFailed)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::change::MockChangeObserver;
    use crate::clock::MockClock;
    use crate::item::{
        Item, ItemDescription, ItemId, ItemName, ItemPatch, ItemService, MockItemRepository, NewItem, Page, Position,
    };
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

    fn observed(repository: MockItemRepository, observer: MockChangeObserver) -> ItemService {
        service(repository).with_change_observer(Arc::new(observer))
    }

    #[tokio::test]
    async fn every_write_is_reported_before_it_returns() {
        let mut repo = MockItemRepository::new();
        repo.expect_insert().returning(|_| Ok(()));
        repo.expect_update().returning(|_, _, _| Ok(Some(item("alice"))));
        repo.expect_delete().returning(|_, _| Ok(true));
        let reported = Arc::new(std::sync::Mutex::new(Vec::new()));
        let mut observer = MockChangeObserver::new();
        let seen = reported.clone();
        observer
            .expect_changed()
            .returning(move |change| seen.lock().unwrap().push(change.clone()));
        let service = observed(repo, observer);
        let alice = user("alice");
        let new = NewItem {
            name: ItemName::parse("x").unwrap(),
            description: None,
            is_active: true,
        };
        service.create(&alice, new).await.unwrap();
        let id = ItemId::generate();
        service
            .update(&alice, &id.to_string(), ItemPatch::default())
            .await
            .unwrap();
        service.delete(&alice, &id.to_string()).await.unwrap();
        let changed = Change::changed("items", &alice, id);
        assert_eq!(
            *reported.lock().unwrap(),
            [Change::created("items", &alice), changed.clone(), changed],
            "a create changes the scope and no existing item; a change or deletion that item"
        );
    }

    #[tokio::test]
    async fn a_failed_or_refused_write_reports_nothing() {
        let mut repo = MockItemRepository::new();
        repo.expect_find().returning(|_, _| Ok(Some(item("alice"))));
        repo.expect_delete().returning(|_, _| Ok(false));
        repo.expect_insert()
            .returning(|_| Err(Error::Unavailable(anyhow::anyhow!("down"))));
        let mut observer = MockChangeObserver::new();
        observer.expect_changed().never();
        let service = observed(repo, observer);
        let alice = user("alice");
        let id = ItemId::generate().to_string();
        assert!(matches!(service.delete(&alice, &id).await, Err(Error::NotFound)));
        let never = |_: &Item| false;
        assert!(matches!(
            service.delete_if(&alice, &id, &never).await,
            Err(Error::PreconditionFailed)
        ));
        let new = NewItem {
            name: ItemName::parse("x").unwrap(),
            description: None,
            is_active: true,
        };
        assert!(service.create(&alice, new).await.is_err());
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
        assert_eq!(
            next,
            Some(Position::after(&items[1], crate::resource::list::Sort::default()))
        );
        let page = Page::new(None, Some(5)).unwrap();
        let (items, next) = service.list_page(&user("alice"), page).await.unwrap();
        assert_eq!((items.len(), next), (3, None));
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
