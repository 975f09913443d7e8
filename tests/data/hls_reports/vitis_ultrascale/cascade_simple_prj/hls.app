<AutoPilot:project xmlns:AutoPilot="com.autoesl.autopilot.project" projectType="C/C++" name="cascade_simple_prj" top="cascade_simple">
    <solutions>
        <solution name="solution1" status=""/>
    </solutions>
</AutoPilot:project>
