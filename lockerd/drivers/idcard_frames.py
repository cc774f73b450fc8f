"""Second-generation ID-card reader (二代身份证阅读器) SAM frames as pure functions, and the card they carry.

Wire format (docs/idcard.md; golden frames and their public sources in
tests/drivers/test_idcard_frames.py): `AA AA AA 96 69 LEN_HI LEN_LO BODY CHK`; LEN (big-endian)
counts BODY and CHK; CHK is the XOR of everything after the preamble. A request's BODY is
`CMD PARA` (find card `AA AA AA 96 69 00 03 20 01 22`), a reply's `SW1 SW2 SW3 DATA` (no card
`... 00 04 00 00 80 84`). The wire does not say which a frame is, nor which command a reply
answers: the caller views a checked `SamFrame` as the reply it expects, by its shape.

A read reply carries a 256-byte UCS-2 text block and a 1024-byte photo, which is never decoded,
copied or returned. Garbled text, impossible dates or a wrong GB 11643 check digit make a
`CardError`, never an `IdCard`; an `IdCard` masks its personal fields in its repr.
"""

from __future__ import annotations

import struct
import unicodedata
from dataclasses import dataclass
from datetime import date
from enum import Enum, IntEnum
from functools import reduce

from lockerd.drivers.errors import FrameError
from lockerd.drivers.framing import StreamDecoder
from lockerd.privacy import mask_id_number, mask_name

PREAMBLE = bytes.fromhex("AA AA AA 96 69")
HEADER_LEN = len(PREAMBLE) + 2
MIN_LENGTH = 3
"""The shortest frame body plus check byte: a request's CMD PARA CHK."""
MAX_LENGTH = 2400
"""Above the longest reply (text + photo + fingerprints, LEN 0x090A); more is a garbled length."""


class CardError(FrameError):
    """An intact reply whose card is not a valid card; never acted on, like any garbled reply."""


class Command(Enum):
    """Request CMD PARA pairs of the SAM module."""

    SAM_RESET = (0x10, 0xFF)
    SAM_STATUS = (0x11, 0xFF)
    SAM_ID = (0x12, 0xFF)
    FIND_CARD = (0x20, 0x01)
    SELECT_CARD = (0x20, 0x02)
    READ_BASE = (0x30, 0x01)


class Status(IntEnum):
    """SW3 of a reply (SW1 SW2 are 00 00)."""

    OK = 0x90
    NO_CONTENT = 0x91
    CARD_FOUND = 0x9F
    BAD_CHECKSUM = 0x10
    BAD_LENGTH = 0x11
    BAD_COMMAND = 0x21
    NOT_PERMITTED = 0x23
    UNKNOWN_ERROR = 0x24
    CARD_AUTH_SAM_FAILED = 0x31
    SAM_AUTH_CARD_FAILED = 0x32
    INFO_VERIFY_FAILED = 0x33
    UNKNOWN_CARD_TYPE = 0x40
    READ_FAILED = 0x41
    RANDOM_FAILED = 0x47
    SELF_TEST_FAILED = 0x60
    SAM_NOT_AUTHORISED = 0x66
    NO_CARD = 0x80
    SELECT_FAILED = 0x81


def describe(sw3: int) -> str:
    """A status byte for messages: its name when known, and its value."""
    try:
        return f"{Status(sw3).name.lower()} ({sw3:#04x})"
    except ValueError:
        return f"status {sw3:#04x}"


def checksum(data: bytes) -> int:
    """CHK: XOR of the bytes it covers (length, body)."""
    return reduce(lambda a, b: a ^ b, data, 0)


def encode_frame(body: bytes) -> bytes:
    """Preamble, length, body and check byte."""
    if not MIN_LENGTH - 1 <= len(body) <= MAX_LENGTH - 1:
        raise ValueError(f"SAM frame body of {len(body)} bytes is outside the protocol")
    covered = struct.pack(">H", len(body) + 1) + body
    return PREAMBLE + covered + bytes([checksum(covered)])


def encode_request(command: Command) -> bytes:
    """A request frame, e.g. find card `AA AA AA 96 69 00 03 20 01 22`."""
    return encode_frame(bytes(command.value))


def encode_reply(sw3: int, data: bytes = b"", *, sw1: int = 0, sw2: int = 0) -> bytes:
    """A reply frame (the simulator's side), e.g. no card `AA AA AA 96 69 00 04 00 00 80 84`."""
    return encode_frame(bytes([sw1, sw2, sw3]) + data)


@dataclass(frozen=True, slots=True, repr=False)
class SamFrame:
    """One frame whose length and check byte are right; its body may hold a card's text."""

    body: bytes

    def encode(self) -> bytes:
        """The frame's bytes on the wire."""
        return encode_frame(self.body)

    def __repr__(self) -> str:
        return f"SamFrame({len(self.body)} body bytes)"


def decode(raw: bytes) -> SamFrame:
    """Validate preamble, length and check byte of one complete frame."""
    if len(raw) < HEADER_LEN + MIN_LENGTH or raw[:len(PREAMBLE)] != PREAMBLE:
        raise FrameError(f"sam: not a frame ({len(raw)} bytes)")
    length = int.from_bytes(raw[5:7], "big")
    if not MIN_LENGTH <= length <= MAX_LENGTH or len(raw) != HEADER_LEN + length:
        raise FrameError(f"sam: length field {length} does not match {len(raw)} bytes")
    if checksum(raw[5:-1]) != raw[-1]:
        raise FrameError(f"sam: bad check byte {raw[-1]:#04x}, want {checksum(raw[5:-1]):#04x}")
    return SamFrame(bytes(raw[7:-1]))


@dataclass(frozen=True, slots=True)
class SamRequest:
    """A frame viewed as a request: CMD, PARA and any data after them."""

    cmd: int
    para: int
    data: bytes = b""

    @property
    def command(self) -> Command | None:
        """The known command, or None for one this module does not speak."""
        try:
            return Command((self.cmd, self.para))
        except ValueError:
            return None


def parse_request(frame: SamFrame) -> SamRequest:
    """View a frame as a request."""
    if len(frame.body) < 2:
        raise FrameError("sam: a request needs CMD and PARA")
    return SamRequest(frame.body[0], frame.body[1], frame.body[2:])


@dataclass(frozen=True, slots=True, repr=False)
class SamReply:
    """A frame viewed as a reply: status words and data (which may be a card's text and photo)."""

    sw1: int
    sw2: int
    sw3: int
    data: bytes = b""

    def __repr__(self) -> str:
        return f"SamReply({describe(self.sw3)}, {len(self.data)} data bytes)"


def parse_reply(frame: SamFrame) -> SamReply:
    """View a frame as a reply."""
    if len(frame.body) < 3:
        raise FrameError("sam: a reply needs SW1 SW2 SW3")
    return SamReply(frame.body[0], frame.body[1], frame.body[2], frame.body[3:])


SUCCESS = {Command.FIND_CARD: Status.CARD_FOUND}
"""SW3 of success where it is not 0x90."""
REPLY_DATA_LEN = {Command.FIND_CARD: 4, Command.SELECT_CARD: 8, Command.READ_BASE: 4 + 256 + 1024,
                  Command.SAM_ID: 16, Command.SAM_STATUS: 0, Command.SAM_RESET: 0}
"""Data bytes of each command's successful reply; a failure reply has none."""


def success_status(command: Command) -> Status:
    """The SW3 that means the command succeeded."""
    return SUCCESS.get(command, Status.OK)


def parse_reply_to(command: Command, frame: SamFrame) -> SamReply:
    """View a frame as the reply to `command`; `FrameError` when its shape is another's.

    Replies do not echo the command, so a late reply to an earlier request (a read's 1284
    data bytes arriving during a select) must not pass for this one: a success carries
    exactly the data its command returns, a failure none.
    """
    reply = parse_reply(frame)
    want = REPLY_DATA_LEN[command] if reply.sw3 == success_status(command) else 0
    if len(reply.data) != want:
        raise FrameError(f"sam: {describe(reply.sw3)} with {len(reply.data)} data bytes is not "
                         f"a reply to {command.name.lower()}")
    return reply


class SamDecoder(StreamDecoder[SamFrame]):
    """Finds SAM frames in a byte stream; resynchronises on the preamble after garbage."""

    headers = frozenset({PREAMBLE[0]})

    def frame_length(self, buf: bytearray) -> int | None:
        """Length from the two bytes after the preamble; 0 when the preamble or length is wrong."""
        seen = min(len(buf), len(PREAMBLE))
        if buf[:seen] != PREAMBLE[:seen]:
            return 0
        if len(buf) < HEADER_LEN:
            return None
        length = int.from_bytes(buf[5:7], "big")
        return HEADER_LEN + length if MIN_LENGTH <= length <= MAX_LENGTH else 0

    def decode(self, raw: bytes) -> SamFrame:
        """See `decode()`."""
        return decode(raw)


# SAM module serial number (管理信息)

SAM_ID_LEN = 16


def parse_sam_id(data: bytes) -> str:
    """The module's serial as readers print it: `05.01-20240101-0000000001-0000000042`.

    Two little-endian 16-bit numbers and three little-endian 32-bit numbers.
    """
    if len(data) != SAM_ID_LEN:
        raise FrameError(f"sam: a SAM id is {SAM_ID_LEN} bytes, got {len(data)}")
    a, b, c, d, e = struct.unpack("<HHIII", data)
    return f"{a:02d}.{b:02d}-{c:08d}-{d:010d}-{e:010d}"


# The card: text block layout, check digit, validation

TEXT_LEN = 256
PHOTO_LEN = 1024
LONG_TERM = "长期"
"""Valid-to of a card that does not expire."""
PAD = " "
TEXT_FIELDS = (("name", 30), ("sex", 2), ("nation", 4), ("birth", 16), ("address", 70),
               ("id_number", 36), ("authority", 30), ("valid_from", 16), ("valid_to", 16))
"""Byte widths of the text block's fields, in order; the remaining 36 bytes are reserved."""
RESERVED_LEN = TEXT_LEN - sum(width for _, width in TEXT_FIELDS)

SEXES = {"0": "未知", "1": "男", "2": "女", "9": "未说明"}
"""GB/T 2261.1 sex codes."""
NATIONS = dict(enumerate((
    "汉", "蒙古", "回", "藏", "维吾尔", "苗", "彝", "壮", "布依", "朝鲜", "满", "侗", "瑶", "白",
    "土家", "哈尼", "哈萨克", "傣", "黎", "傈僳", "佤", "畲", "高山", "拉祜", "水", "东乡", "纳西",
    "景颇", "柯尔克孜", "土", "达斡尔", "仫佬", "羌", "布朗", "撒拉", "毛南", "仡佬", "锡伯", "阿昌",
    "普米", "塔吉克", "怒", "乌孜别克", "俄罗斯", "鄂温克", "德昂", "保安", "裕固", "京", "塔塔尔",
    "独龙", "鄂伦春", "赫哲", "门巴", "珞巴", "基诺"), start=1)) | {97: "其他", 98: "外国血统中国籍人士"}
"""GB 3304 nation codes, as two-digit numbers on the card."""

ID_WEIGHTS = tuple(pow(2, 17 - i, 11) for i in range(17))
NAME_PUNCTUATION = frozenset("·•．.- ")


def id_check_char(first17: str) -> str:
    """GB 11643 check character (ISO 7064 MOD 11-2) of the first 17 digits."""
    if len(first17) != 17 or not (first17.isascii() and first17.isdigit()):
        raise ValueError("an ID number starts with 17 digits")
    value = (12 - sum(int(d) * w for d, w in zip(first17, ID_WEIGHTS, strict=True)) % 11) % 11
    return "X" if value == 10 else str(value)


def id_number_valid(value: str) -> bool:
    """18 characters whose last is the check character of the 17 digits before it."""
    if len(value) != 18 or not (value[:17].isascii() and value[:17].isdigit()):
        return False
    return value[17] == id_check_char(value[:17])


@dataclass(frozen=True, slots=True, repr=False)
class CardText:
    """The nine text fields as the card stores them, unchecked strings (padding removed).

    What the wire carries before validation, and what the simulator encodes its test cards from.
    """

    name: str
    sex: str
    nation: str
    birth: str
    address: str
    id_number: str
    authority: str
    valid_from: str
    valid_to: str

    def __repr__(self) -> str:
        return f"CardText(name={mask_name(self.name)!r}, id_number={mask_id_number(self.id_number)!r})"


def encode_text_block(text: CardText) -> bytes:
    """The 256-byte UCS-2 little-endian block, each field padded with spaces (the simulator's side)."""
    out = bytearray()
    for name, width in TEXT_FIELDS:
        raw = getattr(text, name).encode("utf-16-le")
        if len(raw) > width:
            raise ValueError(f"card field {name} is longer than {width // 2} characters")
        out += raw + (PAD * ((width - len(raw)) // 2)).encode("utf-16-le")
    out += (PAD * (RESERVED_LEN // 2)).encode("utf-16-le")
    return bytes(out)


def parse_text_block(block: bytes) -> CardText:
    """Split and decode the text block; bytes that are not UCS-2 text are a `CardError`.

    Errors name the field, never its content: the content is personal data.
    """
    if len(block) != TEXT_LEN:
        raise CardError(f"card text block is {len(block)} bytes, not {TEXT_LEN}")
    values: dict[str, str] = {}
    pos = 0
    for name, width in TEXT_FIELDS:
        try:
            value = block[pos:pos + width].decode("utf-16-le")
        except UnicodeDecodeError:
            raise CardError(f"card field {name} is not UCS-2 text") from None
        values[name] = value.rstrip(PAD + "\x00")
        pos += width
    return CardText(**values)


def encode_base_info(text: CardText, photo: bytes) -> bytes:
    """Data of a read-base-information reply: text length, photo length, text, photo."""
    return struct.pack(">HH", TEXT_LEN, len(photo)) + encode_text_block(text) + photo


def parse_base_info(data: bytes) -> IdCard:
    """The card in a read-base-information reply's data. The photo is not looked at, only
    its length checked: it is never copied, kept or returned."""
    if len(data) < 4:
        raise CardError("read reply too short for its length fields")
    text_len, photo_len = struct.unpack_from(">HH", data)
    if text_len != TEXT_LEN or photo_len != PHOTO_LEN or len(data) != 4 + text_len + photo_len:
        raise CardError(f"read reply lengths {text_len}+{photo_len} do not fit its {len(data)} bytes")
    return IdCard.from_text(parse_text_block(data[4:4 + TEXT_LEN]))


def _is_text(value: str, max_chars: int) -> bool:
    return 0 < len(value) <= max_chars and value.isprintable() and "\ufffd" not in value


def _is_name(value: str) -> bool:
    return _is_text(value, 15) and all(
        unicodedata.category(c)[0] in "LM" or c in NAME_PUNCTUATION for c in value)


def _date(value: str, field: str) -> date:
    if len(value) != 8 or not (value.isascii() and value.isdigit()):
        raise CardError(f"card field {field} is not a YYYYMMDD date")
    try:
        day = date(int(value[:4]), int(value[4:6]), int(value[6:]))
    except ValueError:
        raise CardError(f"card field {field} is not a date that exists") from None
    if day.year < 1900:
        raise CardError(f"card field {field} is before 1900")
    return day


@dataclass(frozen=True, slots=True, repr=False)
class IdCard:
    """A validated second-generation ID card (the photo is never part of it).

    Constructing one checks every field, so an `IdCard` is always a card that passed: text
    fields are text, dates exist and are in order, the ID number's check digit is right and
    its birth date and sex digit agree with the card's. `repr` masks the personal fields.
    """

    name: str
    sex: str
    nation: str
    birth_date: date
    address: str
    id_number: str
    authority: str
    valid_from: date
    valid_to: date | None
    """None: long-term (长期)."""

    def __post_init__(self) -> None:
        if not _is_name(self.name):
            raise CardError("card name is not a name")
        if self.sex not in SEXES:
            raise CardError("card sex is not a GB/T 2261.1 code")
        if not (len(self.nation) == 2 and self.nation.isascii() and self.nation.isdigit()
                and int(self.nation) in NATIONS):
            raise CardError("card nation is not a GB 3304 code")
        if not _is_text(self.address, 35) or not _is_text(self.authority, 15):
            raise CardError("card address or issuing authority is not text")
        if not id_number_valid(self.id_number):
            raise CardError("card ID number fails the GB 11643 check digit")
        if self.id_number[6:14] != self.birth_date.strftime("%Y%m%d"):
            raise CardError("card ID number and birth date disagree")
        if self.sex in "12" and int(self.id_number[16]) % 2 != int(self.sex) % 2:
            raise CardError("card ID number and sex disagree")
        if self.valid_from < self.birth_date or (
                self.valid_to is not None and self.valid_to <= self.valid_from):
            raise CardError("card validity dates are out of order")

    @classmethod
    def from_text(cls, text: CardText) -> IdCard:
        """Validate the fields read from a card; `CardError` when they are not a valid card."""
        valid_to = None if text.valid_to == LONG_TERM else _date(text.valid_to, "valid_to")
        return cls(text.name, text.sex, text.nation, _date(text.birth, "birth"), text.address,
                   text.id_number, text.authority, _date(text.valid_from, "valid_from"), valid_to)

    def to_text(self) -> CardText:
        """The fields as the card stores them."""
        return CardText(self.name, self.sex, self.nation, self.birth_date.strftime("%Y%m%d"),
                        self.address, self.id_number, self.authority,
                        self.valid_from.strftime("%Y%m%d"),
                        LONG_TERM if self.valid_to is None else self.valid_to.strftime("%Y%m%d"))

    @property
    def sex_name(self) -> str:
        """男 / 女 / 未知 / 未说明."""
        return SEXES[self.sex]

    @property
    def nation_name(self) -> str:
        """The nation's name (汉, 蒙古, ...)."""
        return NATIONS[int(self.nation)]

    def is_expired(self, today: date) -> bool:
        """True after the valid-to day (the card is valid through that day); never when long-term."""
        return self.valid_to is not None and today > self.valid_to

    def __repr__(self) -> str:
        valid_to = LONG_TERM if self.valid_to is None else self.valid_to.isoformat()
        return (f"IdCard(name={mask_name(self.name)!r}, "
                f"id_number={mask_id_number(self.id_number)!r}, valid_to={valid_to!r})")

