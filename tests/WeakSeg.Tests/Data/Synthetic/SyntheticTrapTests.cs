using WeakSeg.Data.Synthetic;

namespace WeakSeg.Tests.Data.Synthetic;

/// <summary>The co-occurrence trap: "boat" nearly always sits on "water", and water mostly holds a boat.</summary>
public class SyntheticTrapTests
{
    [Fact]
    public void Boat_is_on_water_about_90_percent_of_the_time_and_water_mostly_holds_a_boat()
    {
        var config = new SyntheticDatasetConfig();
        const int n = 6000;
        int boat = 0, boatOnWater = 0, water = 0, twoClasses = 0, objects = 0;
        for (int i = 0; i < n; i++)
        {
            var plan = SyntheticImageGenerator.Plan(config, SyntheticSplit.Train, i);
            bool hasBoat = plan.Classes.Contains(SyntheticClassCatalog.TrapClass), onWater = plan.Scene == SceneKind.Water;
            if (hasBoat) boat++;
            if (hasBoat && onWater) boatOnWater++;
            if (onWater) water++;
            if (plan.Classes.Length == 2) twoClasses++;
            objects += plan.ObjectClasses.Length;
        }
        // Hand computation for K = 10: P(boat) = 0.6·0.1 + 0.4·(2/10) = 0.14;
        // P(water) = 0.14·0.9 + 0.86·0.03 = 0.1518; P(boat | water) = 0.126 / 0.1518 = 0.830.
        Assert.InRange((double)boat / n, 0.125, 0.155);
        Assert.InRange((double)boatOnWater / boat, 0.87, 0.93);
        Assert.InRange((double)boatOnWater / water, 0.79, 0.87);
        Assert.InRange((double)twoClasses / n, 0.38, 0.42);
        // E[objects] = 0.6·(0.55 + 0.6 + 0.45) + 0.4·(0.65·2 + 0.35·3) = 0.96 + 0.94 = 1.90
        Assert.InRange((double)objects / n, 1.87, 1.93);
    }

    [Fact]
    public void Trap_probabilities_follow_the_config_and_disappear_when_K_excludes_the_boat()
    {
        var noTrap = new SyntheticDatasetConfig { TrapBackgroundProbability = 0.0, TrapBackgroundElsewhereProbability = 0.0 };
        Assert.DoesNotContain(Enumerable.Range(0, 500), i => SyntheticImageGenerator.Plan(noTrap, SyntheticSplit.Val, i).Scene == SceneKind.Water);
        var oneClass = new SyntheticDatasetConfig { NumClasses = 1 };
        var plans = Enumerable.Range(0, 2000).Select(i => SyntheticImageGenerator.Plan(oneClass, SyntheticSplit.Train, i)).ToArray();
        Assert.All(plans, p => Assert.Equal([1], p.Classes));
        Assert.InRange(plans.Count(p => p.Scene == SceneKind.Water) / 2000.0, 0.015, 0.045); // only the 3 % "elsewhere" rate
    }
}
