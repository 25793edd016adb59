//! The domain's named enums as SQLite text columns: a row reads `Status::Accepted`, never
//! `"accepted"`, and a value the enum does not know is a decode error naming the column.

use sqlx::encode::IsNull;
use sqlx::error::BoxDynError;
use sqlx::sqlite::{SqliteArgumentsBuffer, SqliteTypeInfo, SqliteValueRef};
use sqlx::{Decode, Encode, Sqlite, Type};

use crate::domain::{Kind, LabelType, Status};

macro_rules! text_column {
    ($($name:ty),+) => {$(
        impl Type<Sqlite> for $name {
            fn type_info() -> SqliteTypeInfo {
                <&str as Type<Sqlite>>::type_info()
            }

            fn compatible(ty: &SqliteTypeInfo) -> bool {
                <&str as Type<Sqlite>>::compatible(ty)
            }
        }

        impl<'q> Encode<'q, Sqlite> for $name {
            fn encode_by_ref(&self, buf: &mut SqliteArgumentsBuffer) -> Result<IsNull, BoxDynError> {
                <&str as Encode<'q, Sqlite>>::encode(self.as_str(), buf)
            }
        }

        impl<'r> Decode<'r, Sqlite> for $name {
            fn decode(value: SqliteValueRef<'r>) -> Result<Self, BoxDynError> {
                let text = <&str as Decode<'r, Sqlite>>::decode(value)?;
                Ok(text.parse::<$name>()?)
            }
        }
    )+};
}

text_column!(Status, LabelType, Kind);

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn enums_round_trip_through_sqlite() {
        let pool = sqlx::SqlitePool::connect("sqlite::memory:").await.unwrap();
        let (s, l, k): (Status, LabelType, Kind) = sqlx::query_as("SELECT ?, ?, ?")
            .bind(Status::Rejected)
            .bind(LabelType::Soft)
            .bind(Kind::General)
            .fetch_one(&pool)
            .await
            .unwrap();
        assert_eq!((s, l, k), (Status::Rejected, LabelType::Soft, Kind::General));
        let err = sqlx::query_as::<_, (Status,)>("SELECT 'maybe'").fetch_one(&pool).await.unwrap_err();
        assert!(err.to_string().contains("unknown status \"maybe\""), "{err}");
    }
}
