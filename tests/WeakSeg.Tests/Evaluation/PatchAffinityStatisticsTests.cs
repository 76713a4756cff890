using WeakSeg.Data;
using WeakSeg.Evaluation;

namespace WeakSeg.Tests.Evaluation;

/// <summary><see cref="PatchAffinityAccumulator"/> against hand-computed rows.</summary>
public class PatchAffinityStatisticsTests
{
    [Fact]
    public void A_hand_computed_one_by_three_grid()
    {
        // labels: background, class 1, class 1; rows (unnormalised): [1 3 0], [2 1 1], [0 0 5]; all-token totals 8, 8, 5
        var acc = new PatchAffinityAccumulator();
        acc.Add([1, 3, 0, 2, 1, 1, 0, 0, 5], [8, 8, 5], [0, 1, 1], gridWidth: 3);
        var s = acc.Result();
        Assert.Equal((1, 3L), (s.Images, s.Patches));
        Assert.Equal((0.5 + 0.5 + 1.0) / 3, s.PatchShare, 12);                 // 4/8, 4/8, 5/5
        Assert.Equal((0.25 + 0.25 + 1.0) / 3, s.SelfMass, 12);                 // 1/4, 1/4, 5/5
        Assert.Equal(1.0 / 3, s.SelfChance, 12);
        Assert.Equal(0.25, s.BackgroundSameClass, 12);                          // row 0: 1/4 on the background patch
        Assert.Equal(1.0 / 3, s.BackgroundSameClassChance, 12);
        Assert.Equal((0.5 + 1.0) / 2, s.ForegroundSameClass, 12);               // row 1: (1 + 1)/4; row 2: 5/5
        Assert.Equal(2.0 / 3, s.ForegroundSameClassChance, 12);
        Assert.Equal(1.0, s.NeighbourhoodMass, 12);                             // row 0 has no mass on patch 2, its only non-neighbour
        Assert.Equal((2.0 / 3 + 1.0 + 2.0 / 3) / 3, s.NeighbourhoodChance, 12);
        double h0 = -(0.25 * Math.Log(0.25) + 0.75 * Math.Log(0.75)), h1 = -(0.5 * Math.Log(0.5) + 2 * 0.25 * Math.Log(0.25));
        Assert.Equal((Math.Exp(h0) / 3 + Math.Exp(h1) / 3 + 1.0 / 3) / 3, s.EffectiveSupport, 12);
    }

    [Fact]
    public void Uniform_rows_score_chance_and_identity_rows_score_one()
    {
        // 3×3 grid: class 2 in the top-left 2×2 block, background elsewhere, the bottom-right patch ignored (left out as a row)
        byte[] labels = [2, 2, 0, 2, 2, 0, 0, 0, LabelMap.Ignore];
        int n = labels.Length;
        var uniform = Enumerable.Repeat(1f, n * n).ToArray();
        var totals = Enumerable.Repeat((float)n, n).ToArray();
        var acc = new PatchAffinityAccumulator();
        acc.Add(uniform, totals, labels, gridWidth: 3);
        var u = acc.Result();
        Assert.Equal(8, u.Patches);
        Assert.Equal(u.ForegroundSameClassChance, u.ForegroundSameClass, 12);
        Assert.Equal(4.0 / 9, u.ForegroundSameClass, 12);
        Assert.Equal(u.BackgroundSameClassChance, u.BackgroundSameClass, 12);
        Assert.Equal(4.0 / 9, u.BackgroundSameClass, 12);
        Assert.Equal(u.NeighbourhoodChance, u.NeighbourhoodMass, 12);
        Assert.Equal((3 * 4.0 / 9 + 4 * 6.0 / 9 + 9.0 / 9) / 8, u.NeighbourhoodMass, 12);   // rows 0, 2, 6 (corners): 4 of 9; 1, 3, 5, 7: 6; 4: 9
        Assert.Equal(1.0, u.EffectiveSupport, 12);
        Assert.Equal(1.0, u.PatchShare, 12);

        var identity = new float[n * n];
        for (int i = 0; i < n; i++) identity[i * n + i] = 2f;
        var id = new PatchAffinityAccumulator();
        id.Add(identity, Enumerable.Repeat(4f, n).ToArray(), labels, gridWidth: 3);
        var d = id.Result();
        Assert.Equal((1.0, 1.0, 1.0, 1.0), (d.SelfMass, d.ForegroundSameClass, d.BackgroundSameClass, d.NeighbourhoodMass));
        Assert.Equal(1.0 / 9, d.EffectiveSupport, 12);
        Assert.Equal(0.5, d.PatchShare, 12);
    }

    [Fact]
    public void Patch_labels_are_the_mask_at_each_patch_centre_and_mismatched_sizes_are_refused()
    {
        var mask = new LabelMap(4, 4, [.. Enumerable.Range(0, 16).Select(i => (byte)i)]);
        Assert.Equal([5, 7, 13, 15], PatchAffinityAccumulator.PatchLabels(mask, 2, 2));   // pixels (1,1), (1,3), (3,1), (3,3)
        Assert.Throws<ArgumentException>(() => new PatchAffinityAccumulator().Add(new float[8], new float[3], new byte[3], 3));
    }
}
