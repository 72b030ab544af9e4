//! Item use cases: ownership, timestamps and ids are decided here, not by the
//! client and not by storage.

use std::sync::Arc;

use super::model::{Item, ItemChanges, ItemId, ItemPatch, NewItem, Page};
use super::port::ItemRepository;
use crate::clock::Clock;
use crate::error::Error;
use crate::user::User;

/// The item use cases for a signed-in user.
pub struct ItemService {
    repository: Arc<dyn ItemRepository>,
    clock: Arc<dyn Clock>,
}

impl ItemService {
    /// Wires the service to its ports.
    pub fn new(repository: Arc<dyn ItemRepository>, clock: Arc<dyn Clock>) -> Self {
        Self { repository, clock }
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
        };
        self.repository
            .update(&user.id, id, &changes)
            .await?
            .filter(|item| item.owner_id == user.id)
            .ok_or(Error::NotFound)
    }

    /// Deletes one of the caller's items.
    ///
    /// # Errors
    /// [`Error::NotFound`] as for [`ItemService::get`], or storage errors.
    pub async fn delete(&self, user: &User, raw_id: &str) -> Result<(), Error> {
        let id = ItemId::parse(raw_id).ok_or(Error::NotFound)?;
        if self.repository.delete(&user.id, id).await? {
            Ok(())
        } else {
            Err(Error::NotFound)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
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

    #[tokio::test]
    async fn storage_outages_propagate_as_unavailable() {
        let mut repo = MockItemRepository::new();
        repo.expect_list()
            .returning(|_, _| Err(Error::Unavailable(anyhow::anyhow!("down"))));
        let err = service(repo).list(&user("alice"), Page::default()).await.unwrap_err();
        assert!(matches!(err, Error::Unavailable(_)));
    }
}
