"""health: foods, meals, water, sleep, body metrics, health-app sync

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-04 12:30:00

The food catalogue itself is loaded by ``flask --app webapp foods-import`` (``make run`` runs it on first start),
not here: a migration that inserted 8,789 foods would slow every schema build and could not take a bigger
production catalogue.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('body_metrics',
    sa.Column('id', sa.BigInteger(), nullable=False),
    sa.Column('user_id', sa.BigInteger(), nullable=False),
    sa.Column('kind', sa.String(length=24), nullable=False),
    sa.Column('value', sa.Float(), nullable=False),
    sa.Column('unit', sa.String(length=16), nullable=False),
    sa.Column('measured_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('end_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('source', sa.String(length=16), server_default='manual', nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.CheckConstraint("kind IN ('weight', 'resting_heart_rate', 'hrv_rmssd', 'hrv_sdnn', 'body_fat', 'height', 'steps', 'active_energy')", name=op.f('ck_body_metrics_kind')),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_body_metrics_user_id_users'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_body_metrics'))
    )
    op.create_index('ix_body_metrics_user_kind_at', 'body_metrics', ['user_id', 'kind', 'measured_at', 'id'], unique=False)
    op.create_table('device_events',
    sa.Column('id', sa.BigInteger(), nullable=False),
    sa.Column('user_id', sa.BigInteger(), nullable=False),
    sa.Column('type', sa.String(length=16), nullable=False),
    sa.Column('at', sa.DateTime(timezone=True), nullable=False),
    sa.CheckConstraint("type IN ('screen_on', 'screen_off', 'unlock')", name=op.f('ck_device_events_type')),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_device_events_user_id_users'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_device_events'))
    )
    op.create_index('uq_device_events_user_at_type', 'device_events', ['user_id', 'at', 'type'], unique=True)
    op.create_table('foods',
    sa.Column('id', sa.BigInteger(), nullable=False),
    sa.Column('user_id', sa.BigInteger(), nullable=True),
    sa.Column('source', sa.String(length=16), nullable=False),
    sa.Column('source_id', sa.String(length=32), nullable=True),
    sa.Column('barcode', sa.String(length=14), nullable=True),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('brand', sa.String(length=120), nullable=True),
    sa.Column('food_group', sa.String(length=80), nullable=True),
    sa.Column('common_names', sa.String(length=200), nullable=True),
    sa.Column('is_recipe', sa.Boolean(), server_default='false', nullable=False),
    sa.Column('search_head', sa.String(length=200), server_default='', nullable=False),
    sa.Column('search_rest', sa.String(length=400), server_default='', nullable=False),
    sa.Column('search_extra', sa.String(length=400), server_default='', nullable=False),
    sa.Column('search_vector', postgresql.TSVECTOR(), sa.Computed("setweight(to_tsvector('english'::regconfig, search_head), 'A') || setweight(to_tsvector('english'::regconfig, search_rest), 'B') || setweight(to_tsvector('english'::regconfig, search_extra), 'C')", persisted=True), nullable=False),
    sa.Column('energy_kcal', sa.Float(), nullable=True),
    sa.Column('protein_g', sa.Float(), nullable=True),
    sa.Column('fat_g', sa.Float(), nullable=True),
    sa.Column('saturated_fat_g', sa.Float(), nullable=True),
    sa.Column('carbohydrate_g', sa.Float(), nullable=True),
    sa.Column('fiber_g', sa.Float(), nullable=True),
    sa.Column('sugars_g', sa.Float(), nullable=True),
    sa.Column('sodium_mg', sa.Float(), nullable=True),
    sa.Column('potassium_mg', sa.Float(), nullable=True),
    sa.Column('calcium_mg', sa.Float(), nullable=True),
    sa.Column('iron_mg', sa.Float(), nullable=True),
    sa.Column('water_g', sa.Float(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.CheckConstraint("(user_id IS NULL) = (source <> 'user')", name=op.f('ck_foods_owner')),
    sa.CheckConstraint("source IN ('sr28', 'fdc', 'off', 'user')", name=op.f('ck_foods_source')),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_foods_user_id_users'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_foods'))
    )
    op.create_index('ix_foods_barcode', 'foods', ['barcode'], unique=False, postgresql_where=sa.text('barcode IS NOT NULL'))
    op.create_index('ix_foods_search', 'foods', ['search_vector'], unique=False, postgresql_using='gin')
    op.create_index('ix_foods_user', 'foods', ['user_id', 'id'], unique=False, postgresql_where=sa.text('user_id IS NOT NULL'))
    op.create_index('uq_foods_catalogue_source', 'foods', ['source', 'source_id'], unique=True, postgresql_where=sa.text('user_id IS NULL'))
    op.create_table('health_profiles',
    sa.Column('user_id', sa.BigInteger(), nullable=False),
    sa.Column('height_cm', sa.Float(), nullable=True),
    sa.Column('protein_pct', sa.SmallInteger(), server_default='20', nullable=False),
    sa.Column('carbohydrate_pct', sa.SmallInteger(), server_default='50', nullable=False),
    sa.Column('fat_pct', sa.SmallInteger(), server_default='30', nullable=False),
    sa.Column('water_goal_ml', sa.Integer(), nullable=True),
    sa.Column('reminders_enabled', sa.Boolean(), server_default='true', nullable=False),
    sa.Column('reminder_every_h', sa.SmallInteger(), server_default='2', nullable=False),
    sa.Column('wake_start', sa.String(length=5), server_default='08:00', nullable=False),
    sa.Column('wake_end', sa.String(length=5), server_default='22:00', nullable=False),
    sa.Column('night_start', sa.String(length=5), server_default='20:00', nullable=False),
    sa.Column('night_end', sa.String(length=5), server_default='12:00', nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.CheckConstraint('protein_pct + carbohydrate_pct + fat_pct = 100', name=op.f('ck_health_profiles_macro_split')),
    sa.CheckConstraint('reminder_every_h BETWEEN 1 AND 12', name=op.f('ck_health_profiles_reminder_every_h')),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_health_profiles_user_id_users'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('user_id', name=op.f('pk_health_profiles'))
    )
    op.create_table('health_sync_items',
    sa.Column('id', sa.BigInteger(), nullable=False),
    sa.Column('user_id', sa.BigInteger(), nullable=False),
    sa.Column('source', sa.String(length=16), nullable=False),
    sa.Column('source_id', sa.String(length=128), nullable=False),
    sa.Column('sample_type', sa.String(length=24), nullable=False),
    sa.Column('record_table', sa.String(length=24), nullable=False),
    sa.Column('record_id', sa.BigInteger(), nullable=True),
    sa.Column('digest', sa.String(length=64), nullable=False),
    sa.Column('changed_at_anchor', sa.Integer(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.CheckConstraint("source IN ('healthkit', 'health_connect')", name=op.f('ck_health_sync_items_source')),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_health_sync_items_user_id_users'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_health_sync_items'))
    )
    op.create_index('uq_health_sync_items_user_source_id', 'health_sync_items', ['user_id', 'source', 'source_id'], unique=True)
    op.create_table('health_sync_states',
    sa.Column('user_id', sa.BigInteger(), nullable=False),
    sa.Column('source', sa.String(length=16), nullable=False),
    sa.Column('anchor', sa.Integer(), server_default='0', nullable=False),
    sa.Column('platform_anchor', sa.Text(), nullable=True),
    sa.Column('updated_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_health_sync_states_user_id_users'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('user_id', 'source', name=op.f('pk_health_sync_states'))
    )
    op.create_table('hydration_reminders',
    sa.Column('id', sa.BigInteger(), nullable=False),
    sa.Column('user_id', sa.BigInteger(), nullable=False),
    sa.Column('slot', sa.String(length=16), nullable=False),
    sa.Column('sent_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('behind_ml', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_hydration_reminders_user_id_users'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_hydration_reminders'))
    )
    op.create_index('ix_hydration_reminders_user_sent', 'hydration_reminders', ['user_id', 'sent_at'], unique=False)
    op.create_index('uq_hydration_reminders_user_slot', 'hydration_reminders', ['user_id', 'slot'], unique=True)
    op.create_table('meals',
    sa.Column('id', sa.BigInteger(), nullable=False),
    sa.Column('user_id', sa.BigInteger(), nullable=False),
    sa.Column('meal_type', sa.String(length=16), nullable=False),
    sa.Column('eaten_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('notes', sa.Text(), nullable=True),
    sa.Column('source', sa.String(length=16), server_default='manual', nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.CheckConstraint("meal_type IN ('breakfast', 'lunch', 'dinner', 'snack')", name=op.f('ck_meals_meal_type')),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_meals_user_id_users'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_meals'))
    )
    op.create_index('ix_meals_user_eaten', 'meals', ['user_id', 'eaten_at', 'id'], unique=False)
    op.create_table('sleep_sessions',
    sa.Column('id', sa.BigInteger(), nullable=False),
    sa.Column('user_id', sa.BigInteger(), nullable=False),
    sa.Column('source', sa.String(length=16), nullable=False),
    sa.Column('start_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('end_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('quality', sa.SmallInteger(), nullable=True),
    sa.Column('notes', sa.Text(), nullable=True),
    sa.Column('stages', postgresql.JSONB(astext_type=sa.Text()), nullable=False),
    sa.Column('uncertainty_min', sa.SmallInteger(), nullable=True),
    sa.Column('confidence', sa.Float(), nullable=True),
    sa.Column('night_of', sa.String(length=10), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.CheckConstraint("end_at > start_at AND end_at - start_at <= interval '24 hours'", name=op.f('ck_sleep_sessions_span')),
    sa.CheckConstraint("source IN ('manual', 'estimated', 'healthkit', 'health_connect')", name=op.f('ck_sleep_sessions_source')),
    sa.CheckConstraint('quality IS NULL OR quality BETWEEN 1 AND 5', name=op.f('ck_sleep_sessions_quality')),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_sleep_sessions_user_id_users'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_sleep_sessions'))
    )
    op.create_index('ix_sleep_sessions_user_start', 'sleep_sessions', ['user_id', 'start_at', 'id'], unique=False)
    op.create_index('uq_sleep_sessions_estimate_night', 'sleep_sessions', ['user_id', 'night_of'], unique=True, postgresql_where=sa.text("source = 'estimated'"))
    op.create_table('water_logs',
    sa.Column('id', sa.BigInteger(), nullable=False),
    sa.Column('user_id', sa.BigInteger(), nullable=False),
    sa.Column('ml', sa.Integer(), nullable=False),
    sa.Column('drink', sa.String(length=32), server_default='water', nullable=False),
    sa.Column('drunk_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('source', sa.String(length=16), server_default='manual', nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.CheckConstraint('ml > 0 AND ml <= 5000', name=op.f('ck_water_logs_ml')),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_water_logs_user_id_users'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_water_logs'))
    )
    op.create_index('ix_water_logs_user_drunk', 'water_logs', ['user_id', 'drunk_at', 'id'], unique=False)
    op.create_table('food_portions',
    sa.Column('id', sa.BigInteger(), nullable=False),
    sa.Column('food_id', sa.BigInteger(), nullable=False),
    sa.Column('seq', sa.SmallInteger(), nullable=False),
    sa.Column('amount', sa.Float(), nullable=False),
    sa.Column('description', sa.Text(), nullable=False),
    sa.Column('grams', sa.Float(), nullable=False),
    sa.CheckConstraint('grams > 0 AND amount > 0', name=op.f('ck_food_portions_positive')),
    sa.ForeignKeyConstraint(['food_id'], ['foods.id'], name=op.f('fk_food_portions_food_id_foods'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_food_portions'))
    )
    op.create_index('ix_food_portions_food', 'food_portions', ['food_id', 'seq'], unique=False)
    op.create_table('recipe_items',
    sa.Column('id', sa.BigInteger(), nullable=False),
    sa.Column('recipe_id', sa.BigInteger(), nullable=False),
    sa.Column('food_id', sa.BigInteger(), nullable=True),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('grams', sa.Float(), nullable=False),
    sa.ForeignKeyConstraint(['food_id'], ['foods.id'], name=op.f('fk_recipe_items_food_id_foods'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['recipe_id'], ['foods.id'], name=op.f('fk_recipe_items_recipe_id_foods'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_recipe_items'))
    )
    op.create_index('ix_recipe_items_recipe', 'recipe_items', ['recipe_id'], unique=False)
    op.create_table('meal_items',
    sa.Column('id', sa.BigInteger(), nullable=False),
    sa.Column('meal_id', sa.BigInteger(), nullable=False),
    sa.Column('food_id', sa.BigInteger(), nullable=True),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('grams', sa.Float(), nullable=False),
    sa.Column('portion_id', sa.BigInteger(), nullable=True),
    sa.Column('quantity', sa.Float(), nullable=True),
    sa.Column('nutrients', postgresql.JSONB(astext_type=sa.Text()), nullable=False),
    sa.ForeignKeyConstraint(['food_id'], ['foods.id'], name=op.f('fk_meal_items_food_id_foods'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['meal_id'], ['meals.id'], name=op.f('fk_meal_items_meal_id_meals'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['portion_id'], ['food_portions.id'], name=op.f('fk_meal_items_portion_id_food_portions'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_meal_items'))
    )
    op.create_index('ix_meal_items_meal', 'meal_items', ['meal_id'], unique=False)


def downgrade() -> None:
    op.drop_index('ix_meal_items_meal', table_name='meal_items')
    op.drop_table('meal_items')
    op.drop_index('ix_recipe_items_recipe', table_name='recipe_items')
    op.drop_table('recipe_items')
    op.drop_index('ix_food_portions_food', table_name='food_portions')
    op.drop_table('food_portions')
    op.drop_index('ix_water_logs_user_drunk', table_name='water_logs')
    op.drop_table('water_logs')
    op.drop_index('uq_sleep_sessions_estimate_night', table_name='sleep_sessions', postgresql_where=sa.text("source = 'estimated'"))
    op.drop_index('ix_sleep_sessions_user_start', table_name='sleep_sessions')
    op.drop_table('sleep_sessions')
    op.drop_index('ix_meals_user_eaten', table_name='meals')
    op.drop_table('meals')
    op.drop_index('uq_hydration_reminders_user_slot', table_name='hydration_reminders')
    op.drop_index('ix_hydration_reminders_user_sent', table_name='hydration_reminders')
    op.drop_table('hydration_reminders')
    op.drop_table('health_sync_states')
    op.drop_index('uq_health_sync_items_user_source_id', table_name='health_sync_items')
    op.drop_table('health_sync_items')
    op.drop_table('health_profiles')
    op.drop_index('uq_foods_catalogue_source', table_name='foods', postgresql_where=sa.text('user_id IS NULL'))
    op.drop_index('ix_foods_user', table_name='foods', postgresql_where=sa.text('user_id IS NOT NULL'))
    op.drop_index('ix_foods_search', table_name='foods', postgresql_using='gin')
    op.drop_index('ix_foods_barcode', table_name='foods', postgresql_where=sa.text('barcode IS NOT NULL'))
    op.drop_table('foods')
    op.drop_index('uq_device_events_user_at_type', table_name='device_events')
    op.drop_table('device_events')
    op.drop_index('ix_body_metrics_user_kind_at', table_name='body_metrics')
    op.drop_table('body_metrics')
