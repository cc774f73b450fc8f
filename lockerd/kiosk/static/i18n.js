// The screen's words in Chinese (default) and English; `t(key, vars)` fills {name} placeholders.

const zh = {
  title: "智能快件箱", lang_switch: "English", welcome: "请选择服务", reg: "登记编号：{n}",
  pickup: "取件", pickup_hint: "输入取件码", send: "寄件", send_hint: "交寄快件",
  courier: "快递员", courier_hint: "投递与收件",
  send_closed: "寄件暂停：摄像头未正常工作", send_closed_detail: "监控设备未运行或被遮挡时不开放寄件（第十九条）。",
  free: "空闲格口：小 {S}　中 {M}　大 {L}",
  back: "返回", home: "首页", ok: "确定", cancel: "取消", clear: "清除", del: "删除", next: "继续",
  code_title: "请输入取件码", code_label: "取件码（6–8 位数字）", open_door: "开箱",
  wrong_code: "取件码不正确，还可尝试 {n} 次。", locked_out: "错误次数过多，请于 {time} 后再试。",
  fee_title: "需支付保管费", fee_text: "免费保管期（{h} 小时）已过，开箱前需支付保管费 {fee} 元（第二十五条）。",
  fee_accept: "同意并开箱",
  door: "{n} 号格口", opening: "{n} 号格口正在打开…", opened_pickup: "{n} 号格口已打开，请取出快件并关门。",
  refuse_btn: "拒收此快件", refuse_title: "拒收原因（第二十六条）",
  refuse_back: "已登记拒收：请将快件放回 {n} 号格口并关门。",
  reason_delayed: "延误", reason_damaged: "损毁", reason_short: "内件短少", reason_wrong_item: "物品不符", reason_other: "其他原因",
  closed: "门已关闭，正在记录…", thanks: "取件完成，谢谢！", refused_done: "已拒收，快递员将取回该快件。",
  left_open: "请关好 {n} 号格口的门", jammed: "{n} 号格口无法打开。", offered: "请改用 {n} 号格口，正在打开。",
  rolled_back: "操作未完成：{why}", staff: "已通知工作人员。",
  failure_not_opened: "格口未能打开", failure_jammed: "格口门卡住", failure_not_closed: "门未关闭",
  failure_item_not_seen: "未检测到物品", failure_item_still_inside: "快件仍在格口内",
  failed: "操作无法记录，请联系工作人员。",
  login_title: "快递员登录", carrier: "快递公司", courier_id: "工号", pin: "密码（PIN）", pass: "离线通行证（扫码）", login: "登录",
  logout: "退出登录", menu_title: "{id}，请选择操作", deliver: "投递快件", worklist: "待取件清单",
  to_collect: "待收寄件（比对申报内容）", to_return: "待取回（拒收、逾期、召回）", nothing: "无",
  collect: "收件", take_back: "取回", declared: "申报内容：{c}",
  deliver_title: "投递快件", waybill: "运单号", size: "尺寸", size_S: "小", size_M: "中", size_L: "大",
  consent: "收件人同意入箱（第二十二条）", sender_chose: "寄件人指定快件箱投递",
  damaged: "外包装明显破损", fresh: "生鲜产品", valuable: "贵重物品", agreement: "已约定可入箱",
  put_in: "请将快件放入 {n} 号格口并关门。", stored: "快件已存入 {n} 号格口。", next_parcel: "投递下一件",
  collect_open: "{n} 号格口已打开，请比对申报内容：{c}", accept: "内容相符，收寄", reject: "拒绝收寄（第二十一条）",
  reject_title: "拒收原因", reject_mismatch: "物品与申报不符", reject_prohibited: "禁寄物品", reject_packaging: "包装问题", reject_other: "其他",
  verdict_reject: "已登记拒收：请将物品放回 {n} 号格口并关门。", verdict_accept: "请取出物品并关门。",
  collected: "已收寄。", rejected: "已拒绝收寄，已通知运营方。", returned: "已取回。", take_out: "{n} 号格口已打开，请取出快件并关门。",
  terms_title: "寄件须知", terms_ack_value: "我已阅读保价规则和保险服务", terms_ack_items: "我已阅读并遵守禁止寄递和限制寄递物品规定",
  terms_version: "条款版本 {v}",
  send_title: "填写寄件信息", ref: "实名查验编号（请勿输入身份证号）", contents: "物品内容",
  c_documents: "文件", c_clothes: "衣物", c_books: "书籍", c_electronics: "电子产品", c_daily: "日用品", c_other: "其他物品",
  send_btn: "寄出并开箱", put_own: "请将未封装的物品放入 {n} 号格口并关门（第十八条）。",
  sent: "交寄完成，快件在 {n} 号格口，等待快递员收寄。", parcel_ref: "交寄编号：{p}",
  card_title_send: "身份查验（第十八条）", card_title_pickup: "此快件须凭身份证领取",
  card_next: "下一步：请将您的身份证放在读卡区。", card_ask: "请将身份证放在读卡区，不要移动。",
  card_ask_pickup: "请选择领取人，然后将身份证放在读卡区。代领人请放本人身份证并选择与收件人的关系。",
  card_relation: "领取人", card_read: "读取身份证", card_retry: "重试",
  card_waiting: "正在等待身份证…还剩 {s} 秒", card_reading: "正在读取身份证…",
  card_ok: "身份核验通过：{who}", card_ok_proxy: "代领核验通过：{who}（{rel}）",
  card_none: "{s} 秒内未检测到身份证。请将身份证平放在读卡区后重试。",
  card_unreadable: "无法读取该身份证。请重新放置后重试；如仍不行，请出示快递公司实名码或联系工作人员。",
  card_expired: "该身份证已过有效期，不能用于查验。请使用有效身份证。",
  card_mismatch: "该身份证不是收件人的。如您代为领取，请选择与收件人的关系后重试。",
  rel_self: "收件人本人", rel_family: "家属", rel_colleague: "同事", rel_property_management: "物业", rel_other: "其他关系",
  unavailable: "系统暂时不可用，请稍后再试。", session: "页面已过期，正在重新加载…",
};

const en = {
  title: "Parcel locker", lang_switch: "中文", welcome: "What would you like to do?", reg: "Registration no. {n}",
  pickup: "Pick up", pickup_hint: "Enter your code", send: "Send", send_hint: "Drop off a parcel",
  courier: "Courier", courier_hint: "Deliver and collect",
  send_closed: "Sending unavailable: camera not working", send_closed_detail: "Drop-offs are closed while the camera is off or covered (Art. 19).",
  free: "Free compartments: S {S}  M {M}  L {L}",
  back: "Back", home: "Home", ok: "OK", cancel: "Cancel", clear: "Clear", del: "Delete", next: "Continue",
  code_title: "Enter your pickup code", code_label: "Pickup code (6–8 digits)", open_door: "Open",
  wrong_code: "Wrong code. {n} attempts left.", locked_out: "Too many wrong codes. Try again after {time}.",
  fee_title: "Storage fee due", fee_text: "The free storage period ({h} h) has passed: a fee of ¥{fee} applies before the door opens (Art. 25).",
  fee_accept: "Accept and open",
  door: "Door {n}", opening: "Door {n} is opening…", opened_pickup: "Door {n} is open. Take your parcel and close the door.",
  refuse_btn: "Refuse this parcel", refuse_title: "Why do you refuse it? (Art. 26)",
  refuse_back: "Refusal noted: put the parcel back in door {n} and close it.",
  reason_delayed: "Delayed", reason_damaged: "Damaged", reason_short: "Contents missing", reason_wrong_item: "Wrong item", reason_other: "Other reason",
  closed: "Door closed, recording…", thanks: "Done. Thank you!", refused_done: "Refused. The courier will take it back.",
  left_open: "Please close door {n}", jammed: "Door {n} does not open.", offered: "Use door {n} instead; it is opening now.",
  rolled_back: "Not completed: {why}.", staff: "Staff have been notified.",
  failure_not_opened: "the door did not open", failure_jammed: "the door is stuck", failure_not_closed: "the door was not closed",
  failure_item_not_seen: "no parcel was detected", failure_item_still_inside: "the parcel is still inside",
  failed: "This could not be recorded. Please call staff.",
  login_title: "Courier login", carrier: "Carrier", courier_id: "Courier id", pin: "PIN", pass: "Offline pass (scan)", login: "Log in",
  logout: "Log out", menu_title: "{id}, what next?", deliver: "Deliver a parcel", worklist: "Worklist",
  to_collect: "Drop-offs to collect (compare the declared contents)", to_return: "To take back (refused, overdue, recalled)", nothing: "None",
  collect: "Collect", take_back: "Take back", declared: "Declared: {c}",
  deliver_title: "Deliver a parcel", waybill: "Waybill number", size: "Size", size_S: "S", size_M: "M", size_L: "L",
  consent: "Recipient agreed (Art. 22)", sender_chose: "Sender chose the locker",
  damaged: "Packaging damaged", fresh: "Fresh produce", valuable: "Valuables", agreement: "Agreement for the locker",
  put_in: "Put the parcel in door {n} and close it.", stored: "Parcel stored in door {n}.", next_parcel: "Next parcel",
  collect_open: "Door {n} is open. Compare with the declared contents: {c}", accept: "Matches: collect", reject: "Reject (Art. 21)",
  reject_title: "Why reject it?", reject_mismatch: "Does not match the declaration", reject_prohibited: "Prohibited item", reject_packaging: "Packaging problem", reject_other: "Other",
  verdict_reject: "Rejection noted: put the item back in door {n} and close it.", verdict_accept: "Take the item and close the door.",
  collected: "Collected.", rejected: "Rejected; the operator is notified.", returned: "Taken back.", take_out: "Door {n} is open. Take the parcel and close the door.",
  terms_title: "Before you send", terms_ack_value: "I have read the insured-value rules and insurance services", terms_ack_items: "I have read and will follow the prohibited and restricted items rules",
  terms_version: "Terms version {v}",
  send_title: "Your parcel", ref: "Identity-check reference (not your ID number)", contents: "Contents",
  c_documents: "Documents", c_clothes: "Clothes", c_books: "Books", c_electronics: "Electronics", c_daily: "Daily goods", c_other: "Other items",
  send_btn: "Send and open", put_own: "Put the unsealed item in door {n} and close the door (Art. 18).",
  sent: "Dropped off: your parcel is in door {n} and waits for the courier.", parcel_ref: "Drop-off reference: {p}",
  card_title_send: "Identity check (Art. 18)", card_title_pickup: "This parcel needs an ID card",
  card_next: "Next: lay your ID card on the reader.", card_ask: "Lay your ID card on the reader and leave it there.",
  card_ask_pickup: "Who is collecting? Then lay the ID card on the reader. A proxy lays their own card and picks the relation to the recipient.",
  card_relation: "Collected by", card_read: "Read ID card", card_retry: "Try again",
  card_waiting: "Waiting for your ID card… {s} s left", card_reading: "Reading the ID card…",
  card_ok: "Identity checked: {who}", card_ok_proxy: "Proxy checked: {who} ({rel})",
  card_none: "No ID card was found on the reader within {s} seconds. Lay it flat on the reader and try again.",
  card_unreadable: "The ID card could not be read. Lay it on the reader again; if that fails, show the carrier's real-name code or call staff.",
  card_expired: "This ID card has expired and cannot be used. Please use a valid ID card.",
  card_mismatch: "This ID card is not the recipient's. If you collect for them, pick your relation and try again.",
  rel_self: "The recipient", rel_family: "Family", rel_colleague: "Colleague", rel_property_management: "Property management", rel_other: "Other",
  unavailable: "The locker is not available right now. Please try again later.", session: "This page expired; reloading…",
};

// Refusals the daemon gives, in plain words (codes: docs/asyncapi.yaml, docs/local-api.md).
const errors = {
  zh: {
    wrong_code: "取件码不正确。", locked_out: "错误次数过多，请稍后再试。", compartment_blocked: "格口暂停使用，已通知工作人员。",
    bad_pin: "工号或密码不正确。", courier_revoked: "该快递员已被停用。", courier_expired: "快递员授权已过期。",
    pass_malformed: "通行证无法识别。", pass_bad_signature: "通行证签名无效。", pass_wrong_carrier: "该快递公司的通行证在此无效。",
    pass_wrong_cabinet: "通行证不适用于本柜。", pass_not_yet_valid: "通行证尚未生效。", pass_expired: "通行证已过期。", pass_revoked: "通行证已被撤销。",
    unknown_carrier: "该快递公司未获授权。", no_consent: "未获收件人同意，且寄件人未指定快件箱，不能入箱（第二十二条）。",
    damaged: "外包装明显破损，不得入箱，请当面投递（第二十三条）。", weight_mismatch: "重量与运单不符，不得入箱（第二十三条）。",
    fresh: "生鲜产品需与寄件人另有约定方可入箱（第二十三条）。", valuable: "贵重物品需与寄件人另有约定方可入箱（第二十三条）。",
    no_free_compartment: "没有合适的空闲格口。", bad_state: "当前状态不允许此操作。", intake_closed: "寄件暂停：摄像头未正常工作（第十九条）。",
    no_verification: "请将身份证放在读卡区，或出示快递公司实名码（第十八条）。", id_number_not_allowed: "请勿输入身份证号，请输入查验编号。",
    id_card_expired: "身份证已过有效期。", id_check_required: "请将身份证放在读卡区后再取件。",
    id_mismatch: "身份证与收件人不符；代收人请选择与收件人的关系。", no_id_reader: "本快件箱无身份证读卡器。",
    no_contents: "请选择物品内容（第十八条）。", not_acknowledged: "请先阅读并确认寄件须知（第十一条）。",
    unknown_parcel: "找不到该快件。", not_your_parcel: "该快件不属于您的快递公司。", not_logged_in: "请先登录。",
    bad_input: "输入格式不正确。", unavailable: "系统暂时不可用，请稍后再试。",
  },
  en: {
    wrong_code: "Wrong code.", locked_out: "Too many wrong attempts; try later.", compartment_blocked: "That compartment is out of service; staff are notified.",
    bad_pin: "Courier id or PIN is wrong.", courier_revoked: "This courier has been revoked.", courier_expired: "This courier's access has expired.",
    pass_malformed: "The pass cannot be read.", pass_bad_signature: "The pass's signature is not valid.", pass_wrong_carrier: "Passes of that carrier are not accepted here.",
    pass_wrong_cabinet: "The pass is not valid at this cabinet.", pass_not_yet_valid: "The pass is not valid yet.", pass_expired: "The pass has expired.", pass_revoked: "The pass was revoked.",
    unknown_carrier: "That carrier is not authorised here.", no_consent: "The recipient did not agree and the sender did not choose a locker (Art. 22).",
    damaged: "Damaged packaging: hand it over in person (Art. 23).", weight_mismatch: "The weight differs from the waybill (Art. 23).",
    fresh: "Fresh produce needs an agreement for locker delivery (Art. 23).", valuable: "Valuables need an agreement for locker delivery (Art. 23).",
    no_free_compartment: "No free compartment of that size.", bad_state: "That is not possible right now.", intake_closed: "Sending unavailable: camera not working (Art. 19).",
    no_verification: "Lay your ID card on the reader, or show the carrier's real-name code (Art. 18).", id_number_not_allowed: "Give the check reference, not an ID number.",
    id_card_expired: "The ID card has expired.", id_check_required: "Lay an ID card on the reader to collect this parcel.",
    id_mismatch: "That ID card is not the recipient's; a proxy chooses the relation.", no_id_reader: "This locker has no ID-card reader.",
    no_contents: "Choose the contents (Art. 18).", not_acknowledged: "Read and acknowledge the terms first (Art. 11).",
    unknown_parcel: "Parcel not found.", not_your_parcel: "That parcel belongs to another carrier.", not_logged_in: "Log in first.",
    bad_input: "Please check what you entered.", unavailable: "The locker is not available right now.",
  },
};

const carriers = { zh: { sf: "顺丰速运", yto: "圆通速递" }, en: { sf: "SF Express", yto: "YTO Express" } };

// The contract terms shown to a sender (Art. 11); their version is recorded with the drop-off.
const terms = {
  zh: [
    "快递服务合同条款：寄件人应如实填写寄递详情单并接受身份查验；快件由所选快递公司收寄，收寄时当场验视。",
    "保价规则：未保价快件按快递服务合同约定赔偿；贵重物品请选择保价或保险服务，保价金额以申报价值为限。",
    "禁止寄递物品：枪支弹药、管制器具、易燃易爆、毒害性、放射性、腐蚀性物品，毒品，活体动物，现金及票证等。限制寄递物品按国家规定办理。",
  ],
  en: [
    "Service contract: give true waybill details and pass the identity check; the chosen carrier collects the parcel and inspects it on the spot.",
    "Insured value: uninsured parcels are compensated as the service contract says; insure valuables, up to the declared value.",
    "Prohibited items: weapons and ammunition, controlled knives, flammable, explosive, toxic, radioactive or corrosive goods, drugs, live animals, cash and securities. Restricted items follow national rules.",
  ],
};

let current = "zh";

export function lang() { return current; }
export function setLang(next) { current = next === "en" ? "en" : "zh"; }

export function t(key, vars = {}) {
  const table = current === "en" ? en : zh;
  const text = table[key] ?? zh[key] ?? key;
  return text.replace(/\{(\w+)\}/g, (_, name) => (name in vars ? String(vars[name]) : `{${name}}`));
}

export function errorText(code) {
  return errors[current][code] ?? errors[current].bad_state;
}

export function carrierName(id) { return carriers[current][id] ?? id; }
export function termsText() { return terms[current]; }
