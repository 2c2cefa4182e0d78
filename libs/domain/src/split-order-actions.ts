import type { Actor, OrderFacts, OrderStateMachine } from './order-process.js';
import { deriveParentStatus } from './splitting.js';

/** A child of a split order, as an action on the order as a whole reads it. */
export interface ChildOrder {
  orderId: string;
  status: string;
}

/**
 * Statuses of an order (or a split order's child) closed before it shipped: cancelled, or
 * refunded whole; no parcel of it is left to send anywhere. REFUNDING too, its money awaiting
 * the payment system's confirmation: a refund takes an order there only with every unit it had
 * left, and REFUNDED is its one way on. One that shipped, whatever it became since (delivered,
 * completed, returned), is not: its parcel went to the address it had.
 */
export const CLOSED_BEFORE_SHIPPING: ReadonlySet<string> = new Set(['CANCELLED', 'REFUNDING', 'REFUNDED']);

/**
 * Actions taken on a split order as a whole that its routes carry out on its children (the
 * order fires neither itself: its status derives from theirs): a refund (a paid order's
 * cancellation) and an address change, each leaving as they are the children closed before
 * they shipped (no parcel of theirs is left to refund or to send).
 */
const CARRIED_TO_CHILDREN: ReadonlySet<string> = new Set(['refund', 'change_address']);

const A_CHILD: OrderFacts = { split: false, child: true };

/** Decisions on a return, which its own route takes on the part holding it (a split order's child), never on the order as a whole. */
const RETURN_DECISIONS: ReadonlySet<string> = new Set(['approve_return', 'refuse_return', 'close_return']);

/** The children `action` on the whole split order moves; undefined for an action not carried out on them. */
function childrenMoved(action: string, children: readonly ChildOrder[]): ChildOrder[] | undefined {
  return CARRIED_TO_CHILDREN.has(action) ? children.filter((child) => !CLOSED_BEFORE_SHIPPING.has(child.status)) : undefined;
}

/**
 * The child of a split order whose status keeps `actor` from taking `action` on the order as a
 * whole (the first of the children it would move that its table refuses); null when none does,
 * or when the action is not carried out on the children.
 */
export function childRefusing(machine: OrderStateMachine, action: string, actor: Actor, children: readonly ChildOrder[]): ChildOrder | null {
  return childrenMoved(action, children)?.find((child) => !machine.can(child.status, action, actor, A_CHILD)) ?? null;
}

/**
 * A refund of some lines of a split order (its refunds route) is carried out on the children
 * holding them, each refunding those lines or, given all it has left, the whole of it: it needs
 * one child that may, whatever the others became (shipped, closed).
 */
const REFUND_LINES = 'refund_lines';

/**
 * What `actor` may take on an order in `status` now, from its type's table, guards included. On
 * a split order (`children` given) an action carried out on the children is offered when the
 * table has it for the order's status and the actor, and it moves at least one child and every
 * child it moves allows it: a child that has shipped keeps the order from being cancelled, and
 * children still waiting for their warehouse let it be (the order's own guard is for what it
 * fires itself, which it never does here). A refund of lines is offered while one child may
 * refund lines; a decision on a return never is (each child's: returnDecisionsOnChildren).
 */
export function offeredActions(machine: OrderStateMachine, status: string, actor: Actor, facts: OrderFacts, children: readonly ChildOrder[]): string[] {
  return machine.allowedActions(status, actor).filter((action) => {
    if (facts.split && RETURN_DECISIONS.has(action)) return false;
    if (facts.split && action === REFUND_LINES) return children.some((child) => ['refund', REFUND_LINES].some((refund) => machine.can(child.status, refund, actor, A_CHILD)));
    const moved = facts.split ? childrenMoved(action, children) : undefined;
    if (moved === undefined) return machine.can(status, action, actor, facts);
    return moved.length > 0 && childRefusing(machine, action, actor, children) === null;
  });
}

/** A decision on a return of one child of a split order: the child it moves, and the status it moves it to. */
export interface ReturnDecision {
  orderId: string;
  action: string;
  to: string;
}

/**
 * The decisions on returns `actor` may take on a split order's `children`, each child's from its
 * own status: the order's status is one child's (the least advanced, or one in after-sales), and
 * a return of another child in another status is decided all the same (its route moves that
 * child alone). Whether the child holds a return to decide is its caller's to read.
 */
export function returnDecisionsOnChildren(machine: OrderStateMachine, actor: Actor, children: readonly ChildOrder[]): ReturnDecision[] {
  return children.flatMap((child) =>
    machine
      .allowedActions(child.status, actor)
      .filter((action) => RETURN_DECISIONS.has(action) && machine.can(child.status, action, actor, A_CHILD))
      .map((action) => ({ orderId: child.orderId, action, to: machine.rule(child.status, action)!.to })),
  );
}

/**
 * What a merchant may take on a split order holding other merchants' lines too: only what is
 * carried out on children, on `own`, the children holding its SKUs alone (the routes move
 * those, never another merchant's), from the order as the merchant sees it (ownPartStatus:
 * another merchant's child in after-sales takes nothing from it): a cancellation, a refund of
 * lines (a decision on a return of its own child: returnDecisionsOnChildren). Nothing on the
 * order itself, which is not its alone.
 */
export function offeredOnOwnChildren(machine: OrderStateMachine, own: readonly ChildOrder[]): string[] {
  if (own.length === 0) return [];
  return offeredActions(machine, ownPartStatus(machine, own), 'merchant', { split: true, child: false }, own).filter((action) => action === REFUND_LINES || CARRIED_TO_CHILDREN.has(action));
}

/** A split order's status as a merchant holding `own` of its children sees it: theirs alone, as the whole order's is all of its children's. */
export function ownPartStatus(machine: OrderStateMachine, own: readonly ChildOrder[]): string {
  return deriveParentStatus(machine, own.map((child) => child.status));
}
