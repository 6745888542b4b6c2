//! Every refusal the server gives, with a stable code and the Chinese residents and workers
//! read: the ground floor, beside ids and time.

use serde::{Deserialize, Serialize};

/// Declares the error codes once, so the enum, the list of all of them and their Chinese
/// messages cannot fall out of step.
macro_rules! error_codes {
    ($($code:ident => $zh:literal,)*) => {
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
        }
    };
}

error_codes! {
    BadJson => "消息格式错误（不是有效的 JSON）",
    BadMessage => "消息内容不完整或类型不对",
    UnknownType => "不认识的消息类型",
    Forbidden => "您的账号无权进行此操作",
    OtherCompound => "该事项不属于您负责的小区",
    UnknownCompound => "没有这个小区",
    UnknownCategory => "没有这个事项类别",
    NotFound => "没有找到这个事项",
    AlreadyClaimed => "该事项已被他人接单",
    NotClaimed => "该事项还没有人接单，请先接单",
    NotHolder => "该事项由他人负责，只有接单人或书记可以操作",
    AlreadyHandedOver => "该事项已在街道代办中",
    NotHandedOver => "该事项不在代办中",
    AlreadyResolved => "该事项已办结",
    NotResolved => "该事项尚未办结，不能重新打开",
    Cancelled => "该事项已撤销",
    AlreadyRated => "已经评价过了，谢谢您",
    EmptyField => "请填写必填内容",
    TooLong => "内容太长了，请简短一些",
    BadPhone => "电话号码格式不对",
    TooManyNotes => "该事项的备注已满，请在已有备注中说明",
    NoPhone => "该事项没有留电话",
    BadRequestId => "请求编号无效",
    RequestReused => "该请求编号已用于另一条上报",
    RateLimited => "提交太频繁，请稍后再试",
    Unavailable => "服务器暂时无法保存，请稍后再试",
    Standby => "这是备用服务器，只能查看，暂不能保存；请稍后再试",
    WrongKey => "小票号与电话后四位（或查询码）对不上",
    NoPlace => "请选择楼号，或选“公共区域”",
    BadAttachments => "附件有误，请重新录音或拍照",
    NotAWorkerHere => "只能派给该小区的网格员",
    UnknownPauseReason => "请从列出的挂起原因中选择",
    AlreadyPaused => "该事项已申请挂起或正在挂起中",
    NotPaused => "该事项没有待批准或进行中的挂起",
    TooManyPauses => "该事项挂起次数已满，请联系书记",
    NotMediable => "这类事项不交楼长调解",
    NotABuildingHeadHere => "只能交给该小区的楼长调解",
    AlreadyMediating => "楼长已在调解中",
    NotMediating => "该事项没有正在进行的调解",
    TooEarlyForCallback => "居民还有时间自己评价，到时会列入待回访",
}
