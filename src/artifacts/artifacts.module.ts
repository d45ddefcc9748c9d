import { Module } from '@nestjs/common';
import { TypeOrmModule } from '@nestjs/typeorm';
import { Artifact } from './artifact.entity.js';
import { ArtifactStore } from './artifact-store.service.js';
import { ArtifactRepository } from './artifact.repository.js';

@Module({
  imports: [TypeOrmModule.forFeature([Artifact])],
  providers: [ArtifactRepository, ArtifactStore],
  exports: [ArtifactStore],
})
export class ArtifactsModule {}
