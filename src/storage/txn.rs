//! The writer's transaction: keeps the inbound path's tables open across the writes of a batch.
//!
//! redb finds a table by name in its table tree on every `open_table` and writes the table's
//! root back on every close. When each of the many small writes of a group commit opened each of
//! its tables itself, that was about a third of an inbound message's cost in the writer. The
//! tables every inbound message touches (`hot_tables!` below) are therefore opened once per batch
//! through their own accessor and stay open until the batch ends.
//!
//! `open_table` works for every table as with redb: it closes the kept table of the same name
//! first, so the two ways never hold one table twice. As with redb, a table still borrowed is a
//! `TableAlreadyOpen` error, not a panic.

use std::cell::{RefCell, RefMut};

use redb::{
    Key, MultimapTable, MultimapTableDefinition, Table, TableDefinition, TableError, TableHandle,
    Value, WriteTransaction,
};

use crate::storage::tables;

/// A table kept open by a `WriteTxn`, borrowed until this is dropped.
pub type HotTable<'a, 't, K, V> = RefMut<'a, Table<'t, K, V>>;

macro_rules! hot_tables {
    ($( $accessor:ident => $def:ident : <$k:ty, $v:ty>; )*) => {
        #[derive(Default)]
        struct HotTables<'t> {
            $( $accessor: RefCell<Option<Table<'t, $k, $v>>>, )*
        }

        impl<'t> WriteTxn<'t> {
            $(
                #[doc = concat!("`tables::", stringify!($def), "`, kept open for the rest of the batch.")]
                #[track_caller]
                pub fn $accessor(&self) -> Result<HotTable<'_, 't, $k, $v>, TableError> {
                    self.hot(&self.hot.$accessor, tables::$def)
                }
            )*

            /// Closes the kept table called `name`, if it is one and is open.
            #[track_caller]
            fn close_hot(&self, name: &str) -> Result<(), TableError> {
                $(
                    if name == tables::$def.name() {
                        return Self::close(&self.hot.$accessor, name);
                    }
                )*
                Ok(())
            }
        }
    };
}

hot_tables! {
    counters => COUNTERS: <&'static str, u64>;
    customers => CUSTOMERS: <u64, &'static [u8]>;
    identities => IDENTITY_CUSTOMER: <&'static str, u64>;
    customer_conversations => CUSTOMER_CONVERSATIONS: <(u64, u64), ()>;
    conversations => CONVERSATIONS: <u64, &'static [u8]>;
    conversation_activity => CONVERSATION_ACTIVITY: <(u64, u64), ()>;
    messages => MESSAGES: <(u64, u64), &'static [u8]>;
    channel_messages => CHANNEL_MESSAGES: <&'static str, (u64, u64)>;
    idempotency => IDEMPOTENCY: <&'static str, &'static [u8]>;
}

pub struct WriteTxn<'t> {
    txn: &'t WriteTransaction,
    hot: HotTables<'t>,
}

impl<'t> WriteTxn<'t> {
    pub fn new(txn: &'t WriteTransaction) -> WriteTxn<'t> {
        WriteTxn {
            txn,
            hot: HotTables::default(),
        }
    }

    /// Opens a table for this caller alone, as redb does.
    #[track_caller]
    pub fn open_table<K: Key + 'static, V: Value + 'static>(
        &self,
        definition: TableDefinition<'_, K, V>,
    ) -> Result<Table<'t, K, V>, TableError> {
        self.close_hot(definition.name())?;
        self.txn.open_table(definition)
    }

    pub fn open_multimap_table<K: Key + 'static, V: Key + 'static>(
        &self,
        definition: MultimapTableDefinition<'_, K, V>,
    ) -> Result<MultimapTable<'t, K, V>, TableError> {
        self.txn.open_multimap_table(definition)
    }

    #[track_caller]
    fn hot<'a, K: Key + 'static, V: Value + 'static>(
        &'a self,
        cell: &'a RefCell<Option<Table<'t, K, V>>>,
        definition: TableDefinition<'static, K, V>,
    ) -> Result<HotTable<'a, 't, K, V>, TableError> {
        let name = definition.name();
        let mut kept = cell.try_borrow_mut().map_err(|_| already_open(name))?;
        if kept.is_none() {
            *kept = Some(self.txn.open_table(definition)?);
        }
        RefMut::filter_map(kept, Option::as_mut).map_err(|_| already_open(name))
    }

    #[track_caller]
    fn close<K: Key + 'static, V: Value + 'static>(
        cell: &RefCell<Option<Table<'t, K, V>>>,
        name: &str,
    ) -> Result<(), TableError> {
        cell.try_borrow_mut()
            .map_err(|_| already_open(name))?
            .take();
        Ok(())
    }
}

#[track_caller]
fn already_open(name: &str) -> TableError {
    TableError::TableAlreadyOpen(name.to_string(), std::panic::Location::caller())
}

#[cfg(test)]
mod tests {
    use super::*;
    use redb::{ReadableDatabase, ReadableTable, ReadableTableMetadata};

    fn database() -> (tempfile::TempDir, redb::Database) {
        let dir = tempfile::tempdir().unwrap();
        let db = redb::Database::create(dir.path().join("t.redb")).unwrap();
        (dir, db)
    }

    #[test]
    fn kept_tables_and_opened_tables_see_and_commit_the_same_rows() {
        let (_dir, db) = database();
        let txn = db.begin_write().unwrap();
        {
            let write = WriteTxn::new(&txn);
            for n in 1..=10u64 {
                write.counters().unwrap().insert("n", n).unwrap();
                write.conversations().unwrap().insert(n, &b"x"[..]).unwrap();
            }
            // Opening the kept table by definition closes the kept one first, then sees its rows.
            let opened = write.open_table(tables::COUNTERS).unwrap();
            assert_eq!(opened.get("n").unwrap().unwrap().value(), 10);
            drop(opened);
            assert_eq!(
                write.counters().unwrap().get("n").unwrap().unwrap().value(),
                10
            );
        }
        txn.commit().unwrap();
        let read = db.begin_read().unwrap();
        assert_eq!(
            read.open_table(tables::CONVERSATIONS)
                .unwrap()
                .len()
                .unwrap(),
            10
        );
    }

    #[test]
    fn a_table_in_use_is_an_error_not_a_panic() {
        let (_dir, db) = database();
        let txn = db.begin_write().unwrap();
        let write = WriteTxn::new(&txn);
        let held = write.messages().unwrap();
        assert!(matches!(
            write.messages(),
            Err(TableError::TableAlreadyOpen(..))
        ));
        assert!(matches!(
            write.open_table(tables::MESSAGES),
            Err(TableError::TableAlreadyOpen(..))
        ));
        drop(held);
        assert!(write.open_table(tables::MESSAGES).is_ok());
        assert!(write.messages().is_ok());
    }
}
