//! Items' [`ScopedRepository`](domain::resource::ScopedRepository): the
//! kit's [`LanedRepository`] over the `items` table ([`ItemsTable`]).

use domain::item::Item;

use crate::entities::items;
pub use crate::owner::OwnerIdType;
use crate::resource::LanedRepository;

crate::scoped_table!(ItemsTable: Item = "items" in items {
    name: short => Name,
    description: long => Description,
    is_active: plain => IsActive,
});

/// Items stored in the `items` table (on PostgreSQL through the lanes).
pub type SeaOrmItemRepository = LanedRepository<ItemsTable>;
