import { Column, Entity, PrimaryColumn } from 'typeorm';

/** A generated file, stored once on disk under its sha256 however many jobs produce it. */
@Entity('artifacts')
export class Artifact {
  @PrimaryColumn('text')
  sha256!: string;

  @Column('text', { name: 'content_type' })
  contentType!: string;

  /** File extension for downloads, without the dot. */
  @Column('text')
  extension!: string;

  @Column('bigint', {
    name: 'size_bytes',
    transformer: { to: (value: number) => value, from: (value: string) => Number(value) },
  })
  sizeBytes!: number;

  @Column('timestamptz', { name: 'created_at' })
  createdAt!: Date;

  @Column('timestamptz', { name: 'last_used_at' })
  lastUsedAt!: Date;
}

/** A file stored by content, ready for the job that produced it to refer to. */
export type StoredArtifact = Pick<Artifact, 'sha256' | 'contentType' | 'extension' | 'sizeBytes'>;
