using WeakSeg.Models.Vit;
using WeakSeg.Refinement.Affinity;

namespace WeakSeg.Tests.Refinement.Affinity;

/// <summary>A tiny affinity network (ViT 32 px, patch 8, width 16, two blocks) for the affinity and CLI tests.</summary>
internal static class AffinityTestData
{
    public static VitConfig TinyVit(int classTokens = 1) => new() { ImageSize = 32, PatchSize = 8, EmbedDim = 16, Depth = 2, NumHeads = 2, DropPathRate = 0, NumClassTokens = classTokens };
    public static AffinityNetConfig TinyNet(int classTokens = 1) => new() { Backbone = TinyVit(classTokens), ProjectionChannels = [4, 4], FusedChannels = 8, Upsample = 2 };
}
