import { selectTogether } from '@orders/persistence';
import { createTestEnv, type TestEnv } from '@orders/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

describe('SELECTs read together in one query', () => {
  let env: TestEnv;

  beforeAll(async () => {
    env = await createTestEnv('select_together');
    await env.db.insertInto('members').values([{ user_id: 'ada', level: 'gold' }, { user_id: 'bob', level: 'silver' }]).execute();
    await env.db
      .insertInto('member_history')
      .values([
        { user_id: 'ada', level: 'gold', effective_from: new Date('2026-12-01T10:00:00.123Z') },
        { user_id: 'ada', level: 'platinum', effective_from: new Date('2026-12-02T10:00:00.456Z') },
      ])
      .execute();
  });
  afterAll(async () => {
    await env?.cleanup();
  });

  it('answers each statement with its own rows, as each would alone: dates, numbers and empty answers alike', async () => {
    const members = env.db.selectFrom('members').selectAll().orderBy('user_id');
    const history = env.db.selectFrom('member_history').select(['user_id', 'level', 'effective_from', 'change_id']).where('user_id', '=', 'ada').orderBy('effective_from');
    const nobody = env.db.selectFrom('members').selectAll().where('user_id', 'in', ['carol', 'dave']);
    const [together, alone] = await Promise.all([selectTogether(env.db, [members, history, nobody]), Promise.all([members.execute(), history.execute(), nobody.execute()])]);
    expect(together).toEqual(alone);
    expect(together[1].map((row) => row.effective_from.toISOString())).toEqual(['2026-12-01T10:00:00.123Z', '2026-12-02T10:00:00.456Z']);
    expect(typeof together[1][0]!.change_id).toBe('number');
    // one statement alone is answered as a list of one answer too
    expect(await selectTogether(env.db, [nobody])).toEqual([[]]);
  });

  it('reads a value that would end the statement and start another as the value it is: no statement of it runs', async () => {
    const hostile = "ada'; DELETE FROM members; SELECT '";
    const [byId, all] = await selectTogether(env.db, [env.db.selectFrom('members').selectAll().where('user_id', '=', hostile), env.db.selectFrom('members').select('user_id').orderBy('user_id')]);
    expect(byId).toEqual([]);
    expect(all.map((row) => row.user_id)).toEqual(['ada', 'bob']);
    await env.db.insertInto('members').values({ user_id: hostile, level: 'gold' }).execute();
    const [[stored]] = await selectTogether(env.db, [env.db.selectFrom('members').select('user_id').where('user_id', '=', hostile)]);
    expect(stored?.user_id).toBe(hostile);
    expect(Number((await env.db.selectFrom('members').select((eb) => eb.fn.countAll().as('n')).executeTakeFirstOrThrow()).n)).toBe(3);
  });
});
