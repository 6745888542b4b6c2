//! Every refusal the server gives, with a stable code and the Chinese residents and workers
//! read: the ground floor, beside ids and time.

use serde::{Deserialize, Serialize};

/// Declares the error codes once, so the enum, the list of all of them and their Chinese
/// messages cannot fall out of step.
macro_rules! error_codes {
    ($($code:ident => $status:literal, $zh:literal, $en:literal,)*) => {
        /// Every refusal the server gives, with a stable code.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
        #[serde(rename_all = "snake_case")]
        pub enum ErrorCode {
            $($code,)*
        }

        impl ErrorCode {
            pub fn all() -> &'static [ErrorCode] {
                &[$(ErrorCode::$code,)*]
            }

            /// The Chinese message residents and workers read.
            pub fn message_zh(self) -> &'static str {
                match self {
                    $(ErrorCode::$code => $zh,)*
                }
            }

            /// What it means, in short English (the `message` of a refusal adds the specifics).
            pub fn meaning_en(self) -> &'static str {
                match self {
                    $(ErrorCode::$code => $en,)*
                }
            }

            /// The HTTP status of this refusal when an HTTP route gives it.
            pub fn http_status(self) -> u16 {
                match self {
                    $(ErrorCode::$code => $status,)*
                }
            }
        }
    };
}

/// Declares the HTTP API's own refusals once: each one's status, stable code and Chinese.
macro_rules! refusals {
    ($($name:ident => $status:literal, $code:literal, $zh:expr, $en:literal,)*) => {
        /// A refusal of the HTTP API that is not the live feed's (`ErrorCode`): who may ask,
        /// what the edge takes, the office's own rules. Several may share a code (the
        /// specifics are in each one's Chinese).
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum Refusal {
            $($name,)*
        }

        impl Refusal {
            pub fn all() -> &'static [Refusal] {
                &[$(Refusal::$name,)*]
            }

            pub fn http_status(self) -> u16 {
                match self {
                    $(Refusal::$name => $status,)*
                }
            }

            /// The stable code clients branch on.
            pub fn code(self) -> &'static str {
                match self {
                    $(Refusal::$name => $code,)*
                }
            }

            pub fn message_zh(self) -> &'static str {
                match self {
                    $(Refusal::$name => $zh,)*
                }
            }

            /// What it means, in short English (the `message` adds the specifics).
            pub fn meaning_en(self) -> &'static str {
                match self {
                    $(Refusal::$name => $en,)*
                }
            }
        }
    };
}

error_codes! {
    BadJson => 409, "消息格式错误（不是有效的 JSON）", "the frame is not JSON",
    BadMessage => 409, "消息内容不完整或类型不对", "a field is missing, unknown or of the wrong type",
    UnknownType => 409, "不认识的消息类型", "not a client message type",
    Forbidden => 409, "您的账号无权进行此操作", "the role may not do this",
    OtherCompound => 409, "该事项不属于您负责的小区", "a compound outside the account's",
    UnknownCompound => 409, "没有这个小区", "no such compound",
    UnknownCategory => 409, "没有这个事项类别", "no such category",
    NotFound => 404, "没有找到这个事项", "no such incident",
    AlreadyClaimed => 409, "该事项已被他人接单", "someone claimed it first",
    NotClaimed => 409, "该事项还没有人接单，请先接单", "nobody has claimed it yet",
    NotHolder => 409, "该事项由他人负责，只有接单人或书记可以操作", "another worker holds it",
    AlreadyHandedOver => 409, "该事项已在街道代办中", "already handed over to the street office",
    NotHandedOver => 409, "该事项不在代办中", "not handed over",
    AlreadyResolved => 409, "该事项已办结", "already resolved",
    NotResolved => 409, "该事项尚未办结，不能重新打开", "not resolved yet",
    Cancelled => 409, "该事项已撤销", "cancelled",
    AlreadyRated => 409, "已经评价过了，谢谢您", "already rated",
    EmptyField => 409, "请填写必填内容", "a required text is empty",
    TooLong => 409, "内容太长了，请简短一些", "a text is too long",
    BadPhone => 409, "电话号码格式不对", "not a phone number",
    TooManyNotes => 409, "该事项的备注已满，请在已有备注中说明", "the incident holds all the notes it takes",
    NoPhone => 409, "该事项没有留电话", "reported without a phone number",
    BadRequestId => 409, "请求编号无效", "the request_id is empty or too long",
    RequestReused => 409, "该请求编号已用于另一条上报", "the request_id was used for another report",
    RateLimited => 429, "提交太频繁，请稍后再试", "too many, too fast",
    Unavailable => 503, "服务器暂时无法保存，请稍后再试", "the store cannot write; nothing was stored",
    Standby => 503, "这是备用服务器，只能查看，暂不能保存；请稍后再试", "a standby takes no writes; send it to the primary",
    WrongKey => 404, "小票号与电话后四位（或查询码）对不上", "the ticket and its code do not match",
    NoPlace => 409, "请选择楼号，或选“公共区域”", "no building chosen",
    BadAttachments => 409, "附件有误，请重新录音或拍照", "an attachment is unknown or of the wrong kind",
    NotAWorkerHere => 409, "只能派给该小区的网格员", "not a grid worker of the compound",
    UnknownPauseReason => 409, "请从列出的挂起原因中选择", "not one of the pause reasons",
    AlreadyPaused => 409, "该事项已申请挂起或正在挂起中", "a pause waits or runs",
    NotPaused => 409, "该事项没有待批准或进行中的挂起", "no pause waits or runs",
    TooManyPauses => 409, "该事项挂起次数已满，请联系书记", "paused too often",
    NotMediable => 409, "这类事项不交楼长调解", "the category is not mediated",
    NotABuildingHeadHere => 409, "只能交给该小区的楼长调解", "not a building head of the compound",
    AlreadyMediating => 409, "楼长已在调解中", "a building head mediates it",
    NotMediating => 409, "该事项没有正在进行的调解", "no mediation runs",
    TooEarlyForCallback => 409, "居民还有时间自己评价，到时会列入待回访", "the resident may still answer first",
    NotAnOrder => 409, "只有上级派单（12345、街道）可以退单", "only a work order from above is sent back",
    SendBackAsked => 409, "已申请退单，请等书记处理", "sending it back waits for a supervisor",
    NoSendBack => 409, "没有待处理的退单申请", "nobody asked to send it back",
    SentBack => 409, "该工单已退回派单方", "sent back to its platform",
}

refusals! {
    BadCredentials => 401, "bad_credentials", "账号或密码不对", "wrong login or password",
    Throttled => 429, "throttled", "尝试次数太多，请稍后再试", "too many attempts; wait",
    NoSession => 401, "no_session", "请先登录", "no valid session",
    NoAccount => 404, "not_found", "没有找到", "no such account",
    Standby => 503, "standby", ErrorCode::Standby.message_zh(), "a standby takes no writes",
    Unavailable => 503, "unavailable", "服务器暂时不可用", "the server cannot answer now",
    NotYours => 403, "not_yours", "这不在您管理的小区范围内", "outside the compounds you run",
    MustChangePassword => 403, "must_change_password", "请先修改密码（当前是一次性密码）", "change the one-time password first",
    PairingExpired => 401, "pairing_expired", "配对码已过期或已用过，请重新生成", "the pairing code expired or was used",
    LoginTaken => 409, "exists", "这个登录名已经有人用了", "the login is taken",
    NotEverything => 403, "forbidden", "只有社区书记可以修改社区设置", "only a supervisor of the whole community",
    NoCompoundHere => 404, "not_found", "没有找到这个小区", "no such compound",
    BadRota => 400, "bad_rota", "排班表有误", "the rota is not valid",
    BadCommunity => 400, "bad_community", "社区设置有误", "the community is not valid",
    BadPoints => 400, "bad_points", "积分调整有误：请选择楼长，填写非零分值（不超过 100）和原因", "the points adjustment is not valid",
    BadPatrol => 400, "bad_patrol", "巡防记录有误：请选择您负责的楼栋，并填写检查了什么", "the patrol record is not valid",
    BadKeyName => 400, "bad_key_name", "请填写密钥给谁用（1 到 40 个字）", "a key is named after who holds it: 1 to 40 characters",
    BadWebhook => 400, "bad_webhook", "回传地址须为 http 或 https 网址", "a platform's webhook is an http or https URL",
    NoKey => 404, "not_found", "没有这个接口密钥", "no such API key",
    BadBody => 400, "bad_body", "提交的内容格式不对", "the body is not what the route takes",
    BadAttachment => 415, "bad_attachment", "只能上传照片（JPEG）或录音，且不超过 1 MB", "only a JPEG photo or a voice note, up to 1 MB",
    BadLogin => 400, "bad_request", "登录账号须为 2 到 32 个小写字母、数字或 . _ -，且不以 kiosk- 开头", "not a valid login",
    WeakPassword => 400, "bad_request", "密码至少 8 位", "the password is shorter than 8",
    UnknownCompound => 400, "bad_request", "没有这个小区", "no such compound",
    UnknownCommunity => 400, "bad_request", "没有这个社区", "no such community",
    NotAStreetSupervisor => 400, "bad_request", "只有不分管小区的书记（街道）可以管理多个社区", "only a street office's supervisor runs several communities",
    CommunityNeeded => 400, "community_needed", "请选择社区", "name the community",
    NoCompound => 400, "bad_request", "网格员和楼长至少要选一个小区", "a worker or building head needs a compound",
    NoBuilding => 400, "bad_request", "楼长至少要选一栋楼", "a building head needs a building",
    LongName => 400, "bad_request", "名称最多 40 个字", "a name is over 40 characters",
    BadAccount => 400, "bad_request", "请求无效", "the request is not valid",
    Forbidden => 403, "forbidden", ErrorCode::Forbidden.message_zh(), "the role may not do this",
    NotFound => 404, "not_found", "没有找到", "not found",
    ForeignOrigin => 403, "foreign_origin", "不允许从其他网站连接", "another site's origin",
    BadQuery => 400, "bad_query", "查询条件不对", "the query is not valid",
    NotWebSocket => 400, "not_websocket", "这里只接受 WebSocket 连接", "only WebSocket connections here",
    ForeignHost => 421, "foreign_host", "不认识这个网址", "a host name this server does not answer to",
    TooLarge => 413, "too_large", "提交的内容太大了", "the body is too large",
    SlowBody => 408, "slow_body", "提交太慢，请重试", "the body came too slowly",
    TooManyConnections => 429, "too_many_connections", "连接数太多，请关闭其他页面后再试", "too many connections",
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every refusal of the table reads as one: a client error or an unavailable server, a
    /// snake_case code, a Chinese message.
    #[test]
    fn every_refusal_has_a_status_a_code_and_chinese() {
        let chinese = |text: &str| text.chars().any(|c| ('\u{4e00}'..='\u{9fff}').contains(&c));
        for refusal in Refusal::all() {
            assert!(matches!(refusal.http_status(), 400..=499 | 503), "{refusal:?}");
            let code = refusal.code();
            assert!(code.chars().all(|c| c.is_ascii_lowercase() || c == '_'), "{code}");
            assert!(chinese(refusal.message_zh()), "{refusal:?}");
        }
        for code in ErrorCode::all() {
            assert!(matches!(code.http_status(), 404 | 409 | 429 | 503), "{code:?}");
            assert!(chinese(code.message_zh()), "{code:?}");
        }
    }
}
