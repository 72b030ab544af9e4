//! sea-orm entities of the application's own tables. Generated-style code:
//! keep behaviour out of here (it belongs beside, in the repositories).

pub mod items;
