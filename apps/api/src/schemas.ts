import { MAX_PRICE_CENTS } from '@orders/config';
import { ORDER_TYPES, SKU_ORDER_TYPES, stateMachineFor } from '@orders/domain';
import { SUBJECT } from './tokens.js';

/** JSON schemas of API.md's bodies and answers; they validate input and document /docs/json. */

/**
 * The status and type filters of the order lists: a name no order type has is a typo, answered
 * 400, not an empty list. ACCEPTED is a status API.md names, so it is taken; the lists read
 * MySQL, and an order leaves ACCEPTED as it is written there, so it lists none.
 */
export const orderFilterProperties = {
  status: {
    type: 'string',
    enum: [...new Set(ORDER_TYPES.flatMap((type) => stateMachineFor(type).states()))].sort(),
    description: "any status of an order type; ACCEPTED lists a buyer's orders still in the queue, in their own list (GET /v1/orders) and in an admin's search by their userId, and none elsewhere, where an order is listed once persisted and leaves ACCEPTED then (read it with GET /v1/orders/{orderId})",
  },
  type: { type: 'string', enum: [...ORDER_TYPES] },
} as const;

export const problemSchema = {
  $id: 'Problem',
  type: 'object',
  properties: {
    type: { type: 'string' },
    title: { type: 'string' },
    status: { type: 'integer' },
    detail: { type: 'string' },
    code: { type: 'string' },
    instance: { type: 'string' },
    childOrderId: {
      type: 'string',
      description:
        'an extension member: on a refusal of an action on a split order as a whole (cancel, refund, address change), the child order whose status refused it, as its detail names it; absent when the order itself refused',
    },
    opensAt: {
      type: 'string',
      format: 'date-time',
      description: 'an extension member: on a checkout refused with SALE_NOT_ACTIVE because the flash sale of the SKU its detail names has not opened yet, when it opens; on a change of a flash sale refused with SALE_ALREADY_OPEN, when that sale opened (or opens, within the cutoff)',
    },
    changeableAt: {
      type: 'string',
      format: 'date-time',
      description: 'an extension member: on a change of a flash sale refused with SALE_ALREADY_OPEN, when that sale is over for good (its buyers\' counts toward its limit gone) and a new sale may replace it',
    },
  },
  required: ['type', 'title', 'status', 'detail', 'code'],
} as const;

export const problemRef = { $ref: 'Problem#' } as const;

/** `retry-after` (RFC 9110), which every refusal for now carries: when to send the request again. */
const retryAfterHeader = { 'retry-after': { type: 'integer', minimum: 1, description: 'seconds to wait before sending the same request again' } } as const;

/** A problem answered for now (429, 503), listed in /docs/json with its retry-after and `extraHeaders`. */
export function retryLaterProblem(description: string, extraHeaders: Record<string, { type: string; description: string }> = {}) {
  return { $ref: 'Problem#', description, headers: { ...retryAfterHeader, ...extraHeaders } } as const;
}

/** The body of an action that takes no fields: none, or `{}`; any field is unknown and refused (400, API.md). */
export const noFieldsBody = { type: ['object', 'null'], additionalProperties: false, properties: {} } as const;

const text = (maxLength: number) => ({ type: 'string', minLength: 1, maxLength }) as const;
/**
 * Text printed on a parcel's label: no control characters nor line or paragraph separators (a NUL, a
 * line break inside a field garble it: U+2028 and U+2029 break a line as a line feed does) and one
 * character at least that prints (spaces, zero-width and other invisible characters alone print a
 * blank one). Ajv compiles patterns with the u flag.
 */
const labelText = (maxLength: number) => ({ ...text(maxLength), pattern: '^[^\\p{Cc}\\p{Zl}\\p{Zp}]*[^\\s\\p{Cc}\\p{Cf}\\p{Z}][^\\p{Cc}\\p{Zl}\\p{Zp}]*$' }) as const;
/** ISO 3166-1 alpha-2's 249 assigned codes, and XK (Kosovo, user-assigned), which carriers take. */
const COUNTRY_CODES = (
  'AD AE AF AG AI AL AM AO AQ AR AS AT AU AW AX AZ BA BB BD BE BF BG BH BI BJ BL BM BN BO BQ BR BS BT BV BW BY BZ CA CC CD CF CG CH CI CK CL CM CN CO CR CU CV CW CX CY CZ ' +
  'DE DJ DK DM DO DZ EC EE EG EH ER ES ET FI FJ FK FM FO FR GA GB GD GE GF GG GH GI GL GM GN GP GQ GR GS GT GU GW GY HK HM HN HR HT HU ID IE IL IM IN IO IQ IR IS IT JE ' +
  'JM JO JP KE KG KH KI KM KN KP KR KW KY KZ LA LB LC LI LK LR LS LT LU LV LY MA MC MD ME MF MG MH MK ML MM MN MO MP MQ MR MS MT MU MV MW MX MY MZ NA NC NE NF NG NI NL ' +
  'NO NP NR NU NZ OM PA PE PF PG PH PK PL PM PN PR PS PT PW PY QA RE RO RS RU RW SA SB SC SD SE SG SH SI SJ SK SL SM SN SO SR SS ST SV SX SY SZ TC TD TF TG TH TJ TK TL ' +
  'TM TN TO TR TT TV TW TZ UA UG UM US UY UZ VA VC VE VG VI VN VU WF WS XK YE YT ZA ZM ZW'
).split(' ');
/**
 * A SKU's (or warehouse's) id, which its admin routes take in their paths: not `.` or `..`,
 * which a URL resolves away (/v1/admin/skus/.. is /v1/admin/), so no client could address it.
 */
export const PATH_SEGMENT_ID_PATTERN = '^(?!\\.\\.?$)[A-Za-z0-9._-]{1,64}$';
const pathSegmentId = (description: string) => ({ type: 'string', pattern: PATH_SEGMENT_ID_PATTERN, description }) as const;
const skuId = pathSegmentId('1–64 letters, digits, . _ -; not . or .. (a path segment that URLs resolve away)');
export const warehouseIdSchema = pathSegmentId('1–64 letters, digits, . _ -; not . or .. (its shipping fee is set at /v1/admin/warehouses/{warehouseId}/shipping)');
/** A buyer's or merchant's id: a subject a token may carry (not . or ..), else no one could sign in to see or move what names it. */
export const subjectId = { type: 'string', pattern: SUBJECT.source } as const;
const cents = { type: 'integer', minimum: 0, maximum: MAX_PRICE_CENTS } as const;
/** An order id: a ULID, with `-g<k>` after it for an order that runs in stock bucket k > 0 (StockKeys.orderIdInGroup). */
export const ULID_PATTERN = '^[0-9A-HJKMNP-TV-Z]{26}(-g[1-9][0-9]?)?$';

export const addressSchema = {
  type: 'object',
  additionalProperties: false,
  required: ['name', 'phone', 'line1', 'city', 'postalCode', 'country'],
  properties: {
    // a field of spaces alone, or a phone without 4 digits, would print a blank label at the warehouse
    name: labelText(100),
    phone: { type: 'string', pattern: '^\\+?[ ()-]*(?:[0-9][ ()-]*){4,}$', maxLength: 32 },
    line1: labelText(200),
    city: labelText(100),
    postalCode: labelText(20),
    country: { type: 'string', enum: COUNTRY_CODES, description: 'ISO 3166-1 alpha-2, upper case (and XK)' },
  },
} as const;

type LineLimits = { maxLines: number; maxQty: number };

/** An order's lines in a body: 1 to MAX_ORDER_LINES of them, each of 1 to MAX_LINE_QTY units, unknown fields refused. */
function orderLinesSchema(limits: LineLimits, required: readonly string[], properties: Record<string, unknown>) {
  return {
    type: 'array',
    minItems: 1,
    maxItems: limits.maxLines,
    items: { type: 'object', additionalProperties: false, required, properties: { ...properties, qty: { type: 'integer', minimum: 1, maximum: limits.maxQty } } },
  } as const;
}

export const ORDER_IMPORT_MAX = 500;
/** What a batch of ORDER_IMPORT_MAX orders takes (~2 KB each with a few lines): BODY_LIMIT_BYTES, sized for a checkout, would cap it near 40. */
export const ORDER_IMPORT_BODY_LIMIT = 2 * 1024 * 1024;

/** `POST /v1/admin/orders/import`: up to 500 orders of one channel, priced by that channel. */
export function orderImportBodySchema(limits: LineLimits) {
  const id = { type: 'string', pattern: '^[A-Za-z0-9._:@-]{1,64}$' } as const;
  return {
    type: 'object',
    additionalProperties: false,
    required: ['channel', 'orders'],
    properties: {
      channel: { type: 'string', pattern: '^[a-z0-9_-]{1,64}$', description: 'the order system the orders come from, e.g. a distribution platform or a partner' },
      orders: {
        type: 'array',
        minItems: 1,
        maxItems: ORDER_IMPORT_MAX,
        items: {
          type: 'object',
          additionalProperties: false,
          required: ['externalOrderId', 'userId', 'placedAt', 'status', 'items', 'address'],
          properties: {
            // no space at either end: MySQL compares ids with their trailing spaces ignored
            externalOrderId: { ...text(128), pattern: '^\\S(.*\\S)?$' },
            userId: subjectId,
            placedAt: { type: 'string', format: 'date-time' },
            status: { type: 'string', enum: ['PAID', 'SHIPPED', 'DELIVERED', 'COMPLETED', 'CANCELLED'], description: 'the status in its channel' },
            items: orderLinesSchema(limits, ['skuId', 'title', 'merchantId', 'warehouseId', 'qty', 'unitPriceCents'], {
              skuId,
              title: text(200),
              merchantId: subjectId,
              warehouseId: id,
              channel: { type: 'string', enum: ['self', 'third_party'], default: 'self' },
              unitPriceCents: cents,
              discountCents: { ...cents, default: 0 },
            }),
            shippingCents: { ...cents, default: 0 },
            address: addressSchema,
          },
        },
      },
    },
  } as const;
}

export function checkoutBodySchema(limits: LineLimits) {
  return {
    type: 'object',
    additionalProperties: false,
    required: ['items'],
    properties: {
      items: {
        ...orderLinesSchema(limits, ['skuId', 'qty'], { skuId }),
        description: `the lines of one SKU are one line of their sum, held to ${limits.maxQty} units (MAX_LINE_QTY) as any line: more is 400 VALIDATION_FAILED`,
      },
      address: {
        ...addressSchema,
        description:
          "where the order ships: required (400 VALIDATION_FAILED without it) unless the cart makes an order that ships nothing (virtual SKUs alone); a virtual order keeps the one given",
      },
      couponCode: { type: 'string', pattern: '^[A-Za-z0-9_-]{1,64}$' },
      orderType: {
        type: 'string',
        enum: ['standard', 'flash_sale', 'presale', 'virtual'],
        description:
          "the type the cart must make, else 422 ORDER_TYPE_MISMATCH; by default the SKUs' own: presale or virtual when every SKU is, flash_sale when any SKU is in its flash sale, else standard",
      },
    },
  } as const;
}

export const acceptedSchema = {
  type: 'object',
  properties: {
    orderId: { type: 'string' },
    status: { type: 'string', enum: ['ACCEPTED'] },
    statusUrl: { type: 'string' },
  },
  required: ['orderId', 'status', 'statusUrl'],
} as const;

const amountsSchema = {
  type: ['object', 'null'],
  properties: {
    subtotalCents: { type: 'integer' },
    discountCents: { type: 'integer' },
    shippingCents: { type: 'integer' },
    payableCents: { type: 'integer' },
    refundedCents: { type: 'integer' },
  },
} as const;

export const orderSchema = {
  $id: 'Order',
  type: 'object',
  description: 'While status is ACCEPTED (still in the queue) amounts are null and lines carry only skuId and qty.',
  properties: {
    orderId: { type: 'string' },
    parentOrderId: { type: ['string', 'null'] },
    type: { type: 'string' },
    status: { type: 'string' },
    buyerStatus: { type: 'string' },
    merchantStatus: { type: 'string' },
    userId: { type: 'string' },
    items: {
      type: 'array',
      items: {
        type: 'object',
        properties: {
          skuId: { type: 'string' },
          title: { type: 'string' },
          qty: { type: 'integer' },
          unitPriceCents: { type: 'integer' },
          discountCents: { type: 'integer' },
          payableCents: { type: 'integer' },
          warehouseId: { type: 'string' },
          merchantId: { type: 'string' },
          channel: { type: 'string' },
          shippingCents: { type: 'integer', description: "the line's share of its warehouse's shipping fee" },
          discounts: {
            type: 'array',
            description: "where each cent of the line's discount came from",
            items: {
              type: 'object',
              properties: { source: { type: 'string', enum: ['member', 'promotion', 'coupon'] }, ref: { type: 'string' }, cents: { type: 'integer' } },
            },
          },
          refundedQty: { type: 'integer' },
          refundedCents: { type: 'integer' },
        },
      },
    },
    amounts: amountsSchema,
    address: { type: ['object', 'null'], additionalProperties: { type: 'string' }, description: 'null for a virtual order placed without one: it ships nothing' },
    couponCode: {
      type: ['string', 'null'],
      description:
        "A merchant shown an order holding another merchant's lines too (or a split order's child) reads it only where its own lines took some of the coupon (flash-sale lines take none), an order still in the queue included",
    },
    benefits: {
      type: ['object', 'null'],
      description: 'what the order used: its member level, threshold promotions and coupon, each with the discount it gave',
      properties: {
        member: {
          type: ['object', 'null'],
          properties: { level: { type: 'string' }, discountCents: { type: 'integer' }, freeShipping: { type: 'boolean' } },
        },
        promotions: {
          type: 'array',
          items: { type: 'object', properties: { promotionId: { type: 'string' }, discountCents: { type: 'integer' } } },
        },
        coupon: { type: ['object', 'null'], properties: { code: { type: 'string' }, discountCents: { type: 'integer' } } },
      },
    },
    payment: {
      type: ['object', 'null'],
      description:
        "the payment that paid the order last (a presale: its deposit, then its balance); for an order no payment paid, the latest that succeeded (it came late and went back); null when none did. A split order's child shows its parent's, the buyer's one payment that paid it (its paymentId names the parent), to everyone who may read the child",
      properties: {
        paymentId: { type: 'string' },
        transactionId: { type: ['string', 'null'] },
        paidAt: { type: ['string', 'null'] },
        method: { type: 'string' },
      },
    },
    payments: {
      type: 'array',
      description:
        "every payment attempt of the order, oldest first (a presale: its deposit, then its balance). An attempt that took the money after another had paid the order (e.g. reported FAILED, then SUCCEEDED) is SUCCEEDED too: it was given back, and its refund is among the order's refunds. Empty for a split order's child: its parent holds the payments",
      items: {
        type: 'object',
        properties: {
          paymentId: { type: 'string' },
          purpose: { type: 'string', enum: ['full', 'deposit', 'balance'] },
          amountCents: { type: 'integer' },
          status: { type: 'string', enum: ['PENDING', 'SUCCEEDED', 'FAILED'] },
          transactionId: { type: ['string', 'null'] },
          paidAt: { type: ['string', 'null'] },
          firstSentAt: {
            type: ['string', 'null'],
            description:
              'when the payment system was first asked for it; null while it never was. One still PENDING PAYMENT_CONFIRMATION_GIVE_UP_MS (24 h) after it is asked about no more (PaymentsUnconfirmedGivenUp): an admin asks about it again (POST /v1/orders/:orderId/payments/:paymentId/ask-again), which makes it first sent then',
          },
        },
      },
    },
    shipments: {
      type: 'array',
      items: {
        type: 'object',
        properties: {
          shipmentId: { type: 'string' },
          orderId: { type: 'string', description: 'the order that ships it: a split order lists its children\'s parcels, each under the child\'s id' },
          warehouseId: { type: 'string' },
          trackingNo: { type: ['string', 'null'] },
          changeRefusedAt: {
            type: ['string', 'null'],
            description:
              'when the warehouse refused a change of the parcel (a new address, units refunded out of it) as too late, the parcel having left: it goes to the address, and with the units, it was handed over with (the units stay sold, their refunds withdrawn); null while none was refused. The order\'s own address shows the change all the same',
          },
          status: {
            type: 'string',
            description:
              "ACCEPTED (the warehouse has the parcel), PICKED, PACKED, SHIPPED, DELIVERED; CANCELLED once every unit of it was refunded before it left and the warehouse was told to drop it, or once its order was cancelled before it left (an imported order)",
          },
        },
      },
    },
    subOrders: { type: 'array', items: { type: 'string' } },
    history: {
      type: 'array',
      description:
        "A merchant shown a split order holding another merchant's lines too reads each step after the split as its own part moved (`from` and `to` derived from its own children's statuses, as its `status` is), never a status another merchant's child gave the whole order.",
      items: {
        type: 'object',
        properties: {
          from: { type: ['string', 'null'] },
          action: { type: 'string' },
          to: { type: 'string' },
          at: { type: 'string' },
          actor: { type: 'string' },
          detail: { type: ['string', 'null'], description: 'the reason given with the step, or what it changed (a refund’s id, the new address); null when none' },
        },
      },
    },
    paymentDeadline: {
      type: 'string',
      description:
        "when the order expires unpaid (a presale: its deposit), by MySQL's clock: the whole payment window after the order was persisted, or the deadline its checkout set if that is later. While it is still in the queue (ACCEPTED, not payable yet), the checkout's deadline: the earliest it can be",
    },
    balanceDeadline: {
      type: ['string', 'null'],
      description: "a presale's: when its balance is due, set when its deposit is paid and kept once the balance is paid or the deposit forfeited; null for other orders, before the deposit, and on a split presale's children",
    },
    nextTimer: {
      type: ['object', 'null'],
      description:
        'what the system does to the order by itself next unless someone acts first, and from when (by MySQL\'s clock): expire (unpaid; while a payment the buyer asked for before dueAt waits for the payment system\'s answer, PENDING in payments, the order expires only once it is declined or PAYMENT_TIMEOUT_MS past dueAt: its dueAt may then have passed), expire_balance (a presale\'s balance unpaid: the deposit kept; its balance payment asked for in time is waited for alike), auto_confirm (shipped, receipt not confirmed), complete (the after-sales window closed; while the buyer is still owed a refund, once it is paid back: its dueAt may then have passed, and refundsOwed names them), approve_return (a return request the shop did not review), close_return (an approved return whose parcel never came); null when nothing is (closed, still in the queue, a split order, whose children\'s timers run)',
      properties: {
        action: { type: 'string' },
        dueAt: { type: 'string', format: 'date-time' },
        refundsOwed: {
          type: 'array',
          items: { type: 'string' },
          description:
            "complete alone: the refunds (ids) the buyer is still owed of the order (a split order's child: of its order from before the split too), due, sent, or declined by the payment system and not settled by hand, and the refunds (`<paymentId>-refund`) that are to give back whole a payment the order could not take (late, a second one, another amount) while they have not; while any is, the order is not completed, however long ago dueAt passed. Empty when none is",
        },
      },
    },
    sourceChannel: { type: ['string', 'null'], description: 'an imported order: the order system it came from' },
    externalOrderId: { type: ['string', 'null'], description: 'an imported order: its id in that system' },
    createdAt: { type: ['string', 'null'] },
    updatedAt: {
      type: ['string', 'null'],
      description: "A merchant shown a split order holding another merchant's lines too reads its own children's last change, never that of another merchant's child",
    },
  },
} as const;

/** A SKU's flash sale, as a create or a change of it gives it. */
export const flashSaleBodySchema = {
  type: 'object',
  additionalProperties: false,
  required: ['priceCents', 'startsAt', 'endsAt', 'perUserLimit'],
  properties: {
    priceCents: { ...cents, description: 'at most the list price (priceCents), else 400 VALIDATION_FAILED' },
    startsAt: { type: 'string', format: 'date-time' },
    endsAt: { type: 'string', format: 'date-time' },
    perUserLimit: { type: 'integer', minimum: 0, maximum: 1_000_000, description: '0 means no limit' },
  },
} as const;

export const skuBodySchema = {
  type: 'object',
  additionalProperties: false,
  required: ['skuId', 'title', 'priceCents', 'merchantId', 'channel', 'warehouseId', 'stock', 'deduction'],
  properties: {
    skuId,
    title: text(200),
    priceCents: cents,
    merchantId: subjectId,
    channel: { type: 'string', enum: ['self', 'third_party'] },
    warehouseId: warehouseIdSchema,
    stock: { type: 'integer', minimum: 0, maximum: 1_000_000_000 },
    deduction: { type: 'string', enum: ['placement', 'payment'] },
    orderType: {
      type: 'string',
      enum: [...SKU_ORDER_TYPES],
      default: 'standard',
      description:
        'the type of the orders that sell it: a presale (deposit, then balance; deducted at placement) or virtual SKU is bought in orders of its own type, never with SKUs of another, and has no flash sale',
    },
    stockBuckets: {
      type: 'integer',
      minimum: 1,
      maximum: 64,
      default: 1,
      description: 'a hot SKU: its stock split evenly over this many buckets on different Redis slots; each buyer buys from one of them, and the SKU is ordered on its own',
    },
    flashSale: flashSaleBodySchema,
  },
} as const;

export const skuSchema = {
  $id: 'Sku',
  type: 'object',
  properties: {
    skuId: { type: 'string' },
    title: { type: 'string' },
    priceCents: { type: 'integer' },
    merchantId: { type: 'string' },
    channel: { type: 'string' },
    warehouseId: { type: 'string' },
    deduction: { type: 'string' },
    orderType: { type: 'string', enum: [...SKU_ORDER_TYPES], description: 'the type of the orders that sell it' },
    flashSale: {
      type: ['object', 'null'],
      properties: {
        priceCents: { type: 'integer' },
        startsAt: { type: 'string' },
        endsAt: { type: 'string' },
        perUserLimit: { type: 'integer' },
      },
    },
    stockBuckets: { type: 'integer', description: 'how many buckets the stock is split into (1: not split)' },
    onSale: { type: 'boolean', description: 'false once the shop took it off sale (PUT /v1/admin/skus/{skuId}/on-sale): every checkout of it refused' },
    offSaleSince: { type: ['string', 'null'], description: 'when it was taken off sale (MySQL time); null while on sale' },
    stock: {
      type: 'object',
      description: 'summed over the buckets',
      properties: { available: { type: 'integer' }, reserved: { type: 'integer' }, sold: { type: 'integer' } },
    },
    bucketStock: {
      type: 'array',
      description: "each bucket's stock, bucket 0 first",
      items: {
        type: 'object',
        properties: { available: { type: 'integer' }, reserved: { type: 'integer' }, sold: { type: 'integer' } },
      },
    },
  },
} as const;

export const skuParamsSchema = {
  type: 'object',
  additionalProperties: false,
  required: ['skuId'],
  properties: { skuId },
} as const;

export const orderParamsSchema = {
  type: 'object',
  additionalProperties: false,
  required: ['orderId'],
  // no length: an id no order has is 404 NOT_FOUND (API.md) however long (the URL's own limit is 414)
  properties: { orderId: { type: 'string' } },
} as const;
